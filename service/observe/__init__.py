"""What the autopilot did, at a glance: the status page (`GET /`), its JSON twin
(`GET /api/status`) and the ledger's gauges on `/metrics`.

A read model beside the daemon, never inside its tick: `view` builds plain dicts from the ledger
(through a read-only connection of its own) and from the daemon's health snapshot, `page` and
`chart` render them as one HTML page, `gauges` turns the ledger into Prometheus gauges at scrape
time, and `board` ties them to the HTTP server. Nothing here calls the ZenML store or takes a
lock the tick holds; every list is bounded, so a page costs the same whatever the ledger's size.
"""
