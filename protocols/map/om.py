"""sendIMSI (opcode 58, imsiRetrievalContext-v2): argument and result.

Operation: TS 29.002 §17.6.2 (MAP-OperationAndMaintenanceOperations); service: §9.2.1
(MAP-SEND-IMSI). Both parameters are bare, untagged types: the argument an
ISDN-AddressString (``0x04``), the result an IMSI (``0x04``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tbcd import AddressString, Imsi
from .common import address, as_bytes, enc_address, enc_imsi, fail, imsi, outer, tl


@dataclass(slots=True)
class SendImsiArg:
    """sendIMSI argument: ``msisdn ISDN-AddressString``."""

    msisdn: AddressString

    @classmethod
    def decode(cls, data: bytes, version: int = 2) -> SendImsiArg:
        try:
            data = as_bytes(data)
            vs, ve = outer(data, 0x04, "sendIMSI argument")
            return cls(address(data, vs, ve, "msisdn"))
        except Exception as exc:
            fail(exc, "sendIMSI argument")

    def encode(self, version: int = 2) -> bytes:
        try:
            return tl(0x04, enc_address(self.msisdn))
        except Exception as exc:
            fail(exc, "sendIMSI argument")


@dataclass(slots=True)
class SendImsiRes:
    """sendIMSI result: ``imsi IMSI``."""

    imsi: Imsi

    @classmethod
    def decode(cls, data: bytes, version: int = 2) -> SendImsiRes:
        try:
            data = as_bytes(data)
            vs, ve = outer(data, 0x04, "sendIMSI result")
            return cls(imsi(data, vs, ve, "imsi"))
        except Exception as exc:
            fail(exc, "sendIMSI result")

    def encode(self, version: int = 2) -> bytes:
        try:
            return tl(0x04, enc_imsi(self.imsi))
        except Exception as exc:
            fail(exc, "sendIMSI result")
