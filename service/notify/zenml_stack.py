"""What notifications need from ZenML (README "Who touches ZenML" lists this module): the
alerter of the stack the daemon runs its pipelines on, and where the server's dashboard shows a
run or a model version.

ZenML's alerters are stack components meant to be called in a step; `post()` also works
outside one (Slack's and Discord's fall back to the channel in the component's configuration;
ZenML-NOTES.md). The sender's alerter thread calls it; ZenML's client is shared across threads
there as it is in ZenML's own server (the REST store locks its session, the SQL store pools
connections).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from service.notify.events import DashboardLinks
from service.notify.sender import NoAlerter


def stack_alerter(stack: str | None) -> Callable[[str], bool]:
    """The `post` of the alerter of `stack` (the active stack when None); NoAlerter if it has
    none or it cannot be loaded (its integration is not installed)."""
    from zenml.client import Client
    from zenml.stack import Stack

    client = Client()
    model = (
        client.get_stack(stack, allow_name_prefix_match=False)
        if stack
        else client.active_stack_model
    )
    try:
        alerter = Stack.from_model(model).alerter
    except ImportError as error:
        raise NoAlerter(f"stack {model.name!r}: its alerter cannot be loaded: {error}") from None
    if alerter is None:
        raise NoAlerter(f"stack {model.name!r} has no alerter")
    post: Callable[[str], bool] = alerter.post
    return post


def dashboard_links() -> DashboardLinks:
    """Where a ZenML server's dashboard shows runs (ZenML 0.98's routes, as
    `zenml.utils.dashboard_utils` builds them): `<server>/projects/<project name>/runs/<id>`;
    a ZenML Pro workspace also shows model versions. An embedded store has no dashboard."""
    from zenml.client import Client
    from zenml.enums import StoreType
    from zenml.models import ServerDeploymentType

    client = Client()
    store = client.zen_store
    if store.type != StoreType.REST:
        return DashboardLinks()
    info = store.get_store_info()
    project = client.active_project
    if info.deployment_type == ServerDeploymentType.CLOUD and info.dashboard_url:
        base = f"{info.dashboard_url.rstrip('/')}/projects/{project.id}"
        return DashboardLinks(
            run=f"{base}/runs/{{id}}", model_version=f"{base}/model-versions/{{id}}"
        )
    server = (info.dashboard_url or info.server_url or store.url).rstrip("/")
    return DashboardLinks(run=f"{server}/projects/{quote(project.name)}/runs/{{id}}")
