"""The HTTP lookup API (aiohttp): problem documents (:mod:`.problems`), authentication and
limits (:mod:`.auth`), batch jobs (:mod:`.batch`); the lookup endpoints join them."""
