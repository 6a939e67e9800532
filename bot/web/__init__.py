"""Herald's one web app (aiohttp): `/media` (bot/media_server.py), `/r/<code>` short links (`redirects`) and
`/healthz`, served on HERALD_HTTP_PORT when HERALD_PUBLIC_URL is set (`app.WebApp`)."""
