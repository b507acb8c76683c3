"""The status page: the read model (`view.build`) as one HTML document.

Written as text with every value escaped; styles inline, the chart inline SVG, no script and
nothing fetched: it works on an air-gapped host, and the browser refreshes it by itself
(`<meta http-equiv="refresh">`). Elements carry `data-*` attributes with the raw values, for
tests and for people who scrape it (the JSON twin, `/api/status`, is the better way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from service.observe.chart import OUTCOME_COLOURS, candidates_chart, number

REFRESH_SECONDS = 10
CANDIDATE_ROWS = 10  # of the chart's points, the newest listed below it

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
header{background:#fff;border-bottom:1px solid #d0d7de;padding:12px 24px}
header h1{font-size:18px;margin:0 0 4px}
main{padding:8px 24px 24px;max-width:1100px}
section.automation{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;
margin:16px 0}
h2{font-size:17px;margin:0 0 2px}h3{font-size:14px;margin:16px 0 6px}
.sub{color:#59636e;font-size:13px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;
margin-right:6px;color:#fff}
.ok{background:#1a7f37}.bad{background:#cf222e}.warn{background:#9a6700}.idle{background:#6e7781}
.banner{background:#ffebe9;border:1px solid #ff8182;border-radius:6px;padding:8px 12px;
margin:12px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:10px 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:200px}
.card .big{font-size:20px;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{color:#59636e;font-weight:600}
.error{color:#cf222e;font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;
word-break:break-word}
code,.id{font-family:ui-monospace,monospace;font-size:12px}
.outcome{font-weight:600}
svg.chart{max-width:100%;height:auto;font:11px system-ui,sans-serif}
svg .plot{fill:#fff;stroke:#d0d7de}svg .grid{stroke:#eaeef2}svg .tick,svg .version{fill:#59636e}
svg .threshold{stroke:#9a6700;stroke-width:1.5;stroke-dasharray:6 4}
svg .threshold-label{fill:#9a6700}
.legend span{margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
footer{color:#59636e;font-size:12px;padding:0 24px 24px}
"""


def render(status: Mapping[str, Any]) -> str:
    """The whole page for one `view.build` result."""
    now = _parse(status["generated_at"]) or datetime.now(UTC)
    body = [_header(status["daemon"], now)]
    body.append("<main>")
    automations = status["automations"]
    if not automations:
        body.append("<p>No automation is configured.</p>")
    for automation in automations:
        body.append(_automation(automation, now))
    if status.get("unconfigured"):
        body.append(_unconfigured(status["unconfigured"]))
    if status.get("notifications") is not None:
        body.append(_notifications(status["notifications"], now))
    body.append("</main>")
    body.append(
        f"<footer>Generated {_time(status['generated_at'], now)}; this page refreshes every "
        f'{REFRESH_SECONDS} s. The same content as JSON: <a href="/api/status">/api/status</a>'
        ' (docs/status-page.md). Prometheus metrics: <a href="/metrics">/metrics</a>.</footer>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_title(status)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def _title(status: Mapping[str, Any]) -> str:
    daemon = status["daemon"]
    state = "store unreachable" if not daemon["store_reachable"] else "ok"
    if not daemon["alive"]:
        state = "not ticking"
    return f"ZenML Autopilot: {state}"


# -- the daemon -------------------------------------------------------------------------------


def _header(daemon: Mapping[str, Any], now: datetime) -> str:
    alive = _badge("alive", "ok") if daemon["alive"] else _badge("not ticking", "bad")
    if daemon["store_reachable"]:
        store = _badge("store reachable", "ok")
    elif daemon.get("last_successful_poll") is None and not daemon.get("consecutive_failures"):
        store = _badge("store: no poll yet", "idle")
    else:
        store = _badge("store unreachable", "bad")
    template = (
        _badge("workers warm", "ok")
        if daemon.get("worker_template_ready")
        else _badge("workers warming", "idle")
    )
    facts = [
        f"last tick {_seconds(daemon.get('seconds_since_loop_activity'))} ago",
        f"last successful poll {_time(daemon.get('last_successful_poll'), now)}",
    ]
    lag = daemon.get("lag_seconds") or {}
    if lag:
        worst = max(lag.items(), key=lambda item: item[1])
        facts.append(f"detection lag {_seconds(worst[1])} (<code>{escape(worst[0])}</code>)")
    where = daemon.get("store") or {}
    if where.get("store_url"):
        facts.append(
            f"store <code>{escape(str(where.get('store_type', '')))}</code> "
            f"<code>{escape(str(where['store_url']))}</code>"
        )
    parts = [
        '<header id="daemon" '
        f'data-alive="{_flag(daemon["alive"])}" data-store-reachable="'
        f'{_flag(daemon["store_reachable"])}">',
        "<h1>ZenML Autopilot</h1>",
        f"<div>{alive}{store}{template}</div>",
        f'<div class="sub">{" · ".join(facts)}</div>',
    ]
    if not daemon["store_reachable"] and daemon.get("store_error"):
        since = daemon.get("seconds_since_last_successful_poll")
        parts.append(
            '<div class="banner" id="store-outage"><strong>The store does not answer'
            f"{'' if since is None else f' (last successful poll {_seconds(since)} ago)'}"
            ".</strong> The daemon waits for it with backoff and acts on everything it missed "
            f'when it returns.<div class="error">{escape(daemon["store_error"])}</div></div>'
        )
    parts.append("</header>")
    return "".join(parts)


# -- one automation ---------------------------------------------------------------------------


def _automation(automation: Mapping[str, Any], now: datetime) -> str:
    name = automation["name"]
    policy = automation["policy"]
    comparison = "≥" if policy["goal"] == "maximize" else "≤"
    beat = ", and beat production" if policy["must_beat_production"] else ""
    parts = [
        f'<section class="automation" id="automation-{escape(name)}" '
        f'data-automation="{escape(name)}">',
        f"<h2>{escape(name)}</h2>",
        f'<div class="sub">model <code>{escape(automation["model"])}</code> · datasets '
        f"{', '.join(f'<code>{escape(d)}</code>' for d in automation['datasets'])}"
        f"{_scoring(automation.get('scoring_datasets', ()))} · promoted "
        f"when <code>{escape(policy['metric'])}</code> {comparison} "
        f"{number(policy['threshold'])}{beat}</div>",
    ]
    if "production" not in automation:  # the ledger is not open yet
        parts.append("<p>The daemon is starting: nothing recorded yet.</p></section>")
        return "".join(parts)
    parts.append(_cards(automation, now))
    if automation["awaiting_approval"]:
        parts.append(_awaiting(automation["awaiting_approval"], now))
    parts.append(_candidates(automation, now))
    parts.append(_chains(automation["chains"], now))
    parts.append(_open(automation, now))
    parts.append(_failed(automation, now))
    if automation["production_changes"]:
        parts.append(_changes(automation["production_changes"], now))
    parts.append("</section>")
    return "".join(parts)


def _cards(automation: Mapping[str, Any], now: datetime) -> str:
    production = automation["production"]
    if production is None:
        card = (
            '<div class="card production" data-model-version-id=""><div class="sub">Production'
            '</div><div class="big">none</div><div class="sub">no version is in production'
            "</div></div>"
        )
    else:
        facts = []
        if production["recorded"]:
            facts.append(f"since {_time(production['since'], now)}")
            facts.append(f"by {_changed_by(production['changed_by'])}{_who_why(production)}")
        else:
            facts.append("since before this daemon recorded production changes")
        if production.get("value") is not None:
            facts.append(f"{escape(str(production['metric']))} {number(production['value'])}")
        if production.get("previous_model_version_id"):
            previous = _version(
                production["previous_number"], production["previous_model_version_id"]
            )
            facts.append(f"previously {previous}")
        current = _version(
            production["number"], production["model_version_id"], production.get("url")
        )
        card = (
            '<div class="card production" '
            f'data-model-version-id="{escape(production["model_version_id"])}" '
            f'data-number="{escape(str(production["number"] or ""))}">'
            '<div class="sub">Production</div><div class="big">'
            f"{current}"
            f'</div><div class="sub">{" · ".join(facts)}</div></div>'
        )
    queue = automation["queue"]
    queue_card = (
        '<div class="card queue" '
        f'data-pending="{queue["pending"]}" data-running="{queue["running"]}" '
        f'data-retry-wait="{queue["retry_wait"]}" data-failed="{automation["failed_count"]}">'
        '<div class="sub">Actions</div><div class="big">'
        f'{queue["running"]} running</div><div class="sub">{queue["pending"]} waiting for a '
        f"run slot · {queue['retry_wait']} waiting to retry · "
        f"{automation['failed_count']} failed for good</div></div>"
    )
    return f'<div class="cards">{card}{queue_card}</div>'


def _awaiting(versions: Sequence[Mapping[str, Any]], now: datetime) -> str:
    rows = "".join(
        f'<tr data-model-version-id="{escape(v["model_version_id"])}">'
        f"<td>{_version(v['number'], v['model_version_id'], v.get('url'))}</td>"
        f"<td>{_value(v.get('value'))}</td><td>{_time(v['staged_at'], now)}</td>"
        f"<td>{_expires(v.get('expires_in_seconds'))}</td>"
        f"<td><code>{escape(str(v.get('approve', '')))}</code></td></tr>"
        for v in versions
    )
    return (
        '<h3>Awaiting approval</h3><table class="awaiting"><tr><th>version</th><th>value</th>'
        f"<th>staged</th><th>expires</th><th>approve with</th></tr>{rows}</table>"
    )


def _expires(seconds: Any) -> str:
    if seconds is None:
        return "never"
    if seconds <= 0:
        return "now"
    return f"in {_seconds(float(seconds))}"


def _candidates(automation: Mapping[str, Any], now: datetime) -> str:
    candidates = automation["candidates"]
    policy = automation["policy"]
    if not candidates:
        return '<h3>Candidates</h3><p class="sub">No model version judged yet.</p>'
    chart = candidates_chart(candidates, policy["threshold"], policy["metric"], policy["goal"])
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{outcome.replace("_", " ")}</span>'
        for outcome, colour in OUTCOME_COLOURS.items()
    )
    legend += "<span>◯ in production</span><span>- - threshold</span>"
    rows = "".join(
        f'<tr data-model-version-id="{escape(c["model_version_id"])}" '
        f'data-outcome="{escape(str(c["outcome"]))}">'
        f"<td>{_version(c['number'], c['model_version_id'], c.get('url'))}</td>"
        f"<td>{_value(c.get('value'))}</td>"
        f'<td class="outcome" style="color:{OUTCOME_COLOURS.get(str(c["outcome"]), "inherit")}">'
        f"{escape(str(c['outcome']))}</td><td>{escape(str(c['reason']))}"
        f"{_production_value(c)}</td><td>{_time(c['decided_at'], now)}</td></tr>"
        for c in reversed(candidates[-CANDIDATE_ROWS:])
    )
    better = "higher" if policy["goal"] == "maximize" else "lower"
    return (
        f"<h3>The last {len(candidates)} candidates ({escape(policy['metric'])}, {better} is "
        f'better)</h3><div class="chart-box">{chart}</div><div class="legend sub">{legend}</div>'
        '<table class="candidates"><tr><th>version</th><th>value</th><th>decision</th>'
        f"<th>reason</th><th>decided</th></tr>{rows}</table>"
    )


def _production_value(candidate: Mapping[str, Any]) -> str:
    if candidate.get("production_value") is None:
        return ""
    return f' <span class="sub">(production: {number(candidate["production_value"])})</span>'


def _chains(chains: Sequence[Mapping[str, Any]], now: datetime) -> str:
    if not chains:
        return '<h3>Recent chains</h3><p class="sub">No training yet.</p>'
    rows = []
    for chain in chains:
        dataset = chain["dataset"]
        version = chain["model_version"]
        decision = chain["decision"]
        made = (
            "—" if version is None else _version(version["number"], version["id"], version["url"])
        )
        took = chain["duration_seconds"]
        rows.append(
            f'<tr class="chain" data-dataset-version-id="{escape(dataset["id"])}">'
            f"<td>{escape(str(dataset['name'] or ''))} "
            f'<span class="id" title="{escape(dataset["id"])}">'
            f"v{escape(str(dataset['version'] or '?'))}</span></td>"
            f"<td>{_run(chain['training'])}</td>"
            f"<td>{made}</td>"
            f"<td>{_decided(decision, chain.get('evaluations') or [])}</td>"
            f"<td>{_served(chain.get('deployment'), chain['inference'])}</td>"
            f"<td>{_time(chain['started_at'], now)}</td>"
            f"<td>{'running' if took is None else _seconds(took)}</td>"
            "</tr>"
        )
    return (
        '<h3>Recent chains</h3><table class="chains"><tr><th>dataset</th><th>training run</th>'
        "<th>model version</th><th>decision</th><th>inference run</th><th>started</th>"
        f"<th>took</th></tr>{''.join(rows)}</table>"
    )


def _decided(decision: Mapping[str, Any] | None, evaluations: Sequence[Mapping[str, Any]]) -> str:
    """The decision, and the evaluations it was (or is being) made on: each one's state."""
    shown = "—" if decision is None else _decision(decision)
    if not evaluations:
        return shown
    each = " · ".join(f"{escape(e['role'])} {escape(e['state'])}" for e in evaluations)
    waiting = "evaluating " if decision is None else ""
    return f'{shown if decision else ""}<div class="sub">{waiting}{each}</div>'


def _served(deployment: Mapping[str, Any] | None, inference: Mapping[str, Any] | None) -> str:
    """The inference run, after its deployment's when the automation deploys."""
    if inference is None:
        return "—"
    if deployment is None:
        return _run(inference)
    return f'<span class="sub">deploy</span> {_run(deployment)}<br>{_run(inference)}'


def _decision(decision: Mapping[str, Any]) -> str:
    outcome = str(decision["outcome"])
    colour = OUTCOME_COLOURS.get(outcome, "inherit")
    value = "" if decision.get("value") is None else f" {number(decision['value'])}"
    return (
        f'<span class="outcome" data-outcome="{escape(outcome)}" style="color:{colour}">'
        f'{escape(outcome)}</span><span class="sub">{value}</span>'
    )


def _run(action: Mapping[str, Any]) -> str:
    """A run's state, its id (a link to ZenML's dashboard on a server) and its duration."""
    state = escape(action["state"])
    run_id = action.get("run_id")
    if run_id:
        short = escape(str(run_id)[:8])
        label = f'<span class="id" title="{escape(str(run_id))}">{short}</span>'
        if action.get("run_url"):
            label = f'<a href="{escape(action["run_url"])}">{label}</a>'
    else:
        label = ""
    took = action.get("duration_seconds")
    duration = "" if took is None else f" · {_seconds(took)}"
    attempts = "" if action["attempts"] <= 1 else f" · attempt {action['attempts']}"
    return f'{state} {label}<span class="sub">{duration}{attempts}</span>'


def _open(automation: Mapping[str, Any], now: datetime) -> str:
    actions = automation["open_actions"]
    if not actions:
        return ""
    total = sum(automation["queue"].values())
    more = "" if total <= len(actions) else f" (the first {len(actions)} of {total})"
    return f"<h3>Open actions{more}</h3>{_action_table(actions, now, 'open')}"


def _failed(automation: Mapping[str, Any], now: datetime) -> str:
    actions = automation["failed_actions"]
    if not actions:
        return ""
    total = automation["failed_count"]
    more = "" if total <= len(actions) else f" (the latest {len(actions)} of {total})"
    return (
        f"<h3>Failed for good{more}</h3>{_action_table(actions, now, 'failed')}"
        '<p class="sub"><code>autopilot replay &lt;key&gt;</code> runs one again.</p>'
    )


def _scoring(names: Sequence[str]) -> str:
    """` · scores <names>` for an automation with scoring datasets."""
    return f" · scores {', '.join(f'<code>{escape(n)}</code>' for n in names)}" if names else ""


def _action_table(actions: Sequence[Mapping[str, Any]], now: datetime, kind: str) -> str:
    rows = []
    for action in actions:
        retry = action.get("retry_in_seconds")
        state = escape(action["state"]) + ("" if retry is None else f" (in {_seconds(retry)})")
        error = action.get("error")
        rows.append(
            f'<tr data-key="{escape(action["key"])}" data-state="{escape(action["state"])}">'
            f"<td><code>{escape(action['key'])}</code></td><td>{state}</td>"
            f"<td>{action['attempts']}</td><td>{_time(action['updated_at'], now)}</td>"
            f"<td>{'' if error is None else f'<div class=error>{escape(error)}</div>'}</td></tr>"
        )
    return (
        f'<table class="actions {kind}"><tr><th>key</th><th>state</th><th>attempts</th>'
        f"<th>since</th><th>error</th></tr>{''.join(rows)}</table>"
    )


def _changes(changes: Sequence[Mapping[str, Any]], now: datetime) -> str:
    items = "".join(
        f"<li>{_time(c['changed_at'], now)}: "
        f"{_version(c['number'], c['model_version_id']) if c['model_version_id'] else 'none'}"
        f" by {_changed_by(c['changed_by'])}{_who_why(c)}</li>"
        for c in changes
    )
    return f'<h3>Production changes</h3><ul class="changes sub">{items}</ul>'


def _unconfigured(waiting: Mapping[str, Mapping[str, int]]) -> str:
    items = "".join(
        f"<li><code>{escape(name)}</code>: "
        f"{', '.join(f'{n} {escape(state)}' for state, n in sorted(states.items()))}</li>"
        for name, states in sorted(waiting.items())
    )
    return (
        '<section class="automation" id="unconfigured"><h2>Automations no longer configured'
        '</h2><p class="sub">Their open actions wait until an automation of that name is '
        f"configured again.</p><ul>{items}</ul></section>"
    )


def _notifications(outbox: Mapping[str, Any], now: datetime) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(str(d['destination']))}</code></td><td>{d['undelivered']}</td>"
        f"<td>{_time(d.get('oldest'), now)}</td></tr>"
        for d in outbox.get("destinations", [])
    )
    return (
        '<section class="automation" id="notifications"><h2>Notification outbox</h2>'
        "<table><tr><th>destination</th><th>undelivered</th><th>oldest</th></tr>"
        f"{rows}</table></section>"
    )


# -- small pieces -----------------------------------------------------------------------------


def _version(number: Any, id: str | None, url: str | None = None) -> str:
    label = "#?" if number is None else f"#{number}"
    title = escape(str(id or ""))
    text = f'<span class="version" title="{title}">{escape(label)}</span>'
    return f'<a href="{escape(url)}">{text}</a>' if url else text


def _changed_by(who: str | None) -> str:
    return {
        "autopilot": "the autopilot",
        "external": "a person or its own pipeline",
        "approval": "a person's approval",
        "rollback": "a rollback",
        "observed_at_start": "(already production when the daemon started)",
    }.get(str(who), escape(str(who)))


def _who_why(change: Mapping[str, Any]) -> str:
    """` (alice: the new one misclassifies setosa)`: who made a change and why, if recorded."""
    said = ": ".join(escape(str(change[k])) for k in ("by", "reason") if change.get(k))
    return f" ({said})" if said else ""


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{escape(text)}</span>'


def _flag(value: Any) -> str:
    return "true" if value else "false"


def _value(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else number(float(value))


def _seconds(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _time(value: str | None, now: datetime) -> str:
    """`3.2 min ago`, the exact time on hover."""
    moment = _parse(value) if value else None
    if moment is None:
        return "never" if not value else escape(value)
    ago = (now - moment).total_seconds()
    text = f"{_seconds(max(ago, 0.0))} ago" if ago >= -1 else moment.strftime("%Y-%m-%d %H:%M")
    return f'<time datetime="{escape(value or "")}" title="{escape(value or "")}">{text}</time>'


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
