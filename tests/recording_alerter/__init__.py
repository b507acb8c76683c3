"""A test-only ZenML alerter flavor, `recording`: `post()` appends each message to
`<root>/posts.jsonl`, as a Slack alerter would post it to its channel. Registered in a test's
store and put in a stack like any alerter (`flavor.register_alerter`)."""
