"""SCIM 2.0 (RFC 7643/7644) at ``/scim/v2/``: Users and Groups for an identity provider's
provisioning client (Okta, Microsoft Entra ID, Keycloak, …).

The protocol's objects come from scim2-models (pydantic models of RFC 7643/7644: parsing,
serialization with ``attributes``/``excludedAttributes``, PATCH application, filter
parsing, the Error message); this module maps them to Assay's accounts and teams, and every
write goes through ``accounts/scim_services.py``. Filters compile to SQL
(``accounts/scim_filter.py``). Lists are paged with ``startIndex``/``count``.

What the schemas publish is what Assay stores, no more (``/Schemas``): a User is its
userName, name (given and family), e-mail, active and externalId, with its groups (read
only); a Group is its displayName, externalId and members. An IdP may send other attributes
(phone numbers, titles, …): they are accepted and not kept.

ETags: ``meta.version`` is a hash of the resource as served; ``If-None-Match`` on a GET
answers 304, a stale ``If-Match`` on PUT/PATCH/DELETE 412.

# SECURITY: authenticated by a ``scim``-scoped token of an active staff user only (an API
# token is refused here, and a SCIM token everywhere else: ``token_authenticate``). No
# cookie is read, so CSRF does not apply (the views are csrf-exempt).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Generic, TypeVar

import orjson
from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Error,
    ETag,
    Filter,
    Meta,
    Patch,
    PatchOp,
    Required,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
    ScimPolicy,
    ServiceProviderConfig,
    Sort,
)
from scim2_models import Group as ScimGroup
from scim2_models import User as ScimUser

from accounts import scim_services
from accounts.models import Membership, Team, User
from accounts.scim_filter import GROUP_FIELDS, USER_FIELDS, compile_filter
from accounts.scim_services import GroupFields, UserFields
from accounts.services import token_authenticate
from core import jsonsafe
from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

logger = logging.getLogger("assay.scim")
ResourceT = TypeVar("ResourceT", bound=Resource[Any])
ObjT = TypeVar("ObjT", User, Team)
DescribedT = TypeVar("DescribedT", Schema, ResourceType)

CONTENT_TYPE = "application/scim+json"
DEFAULT_COUNT = 100
MAX_COUNT = 200
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
# What the identity providers send beyond the strict reading (scim2-models' ScimPolicy):
# attributes Assay does not model (the enterprise extension, custom ones) are dropped, not
# refused; Microsoft Entra's "remove" carrying the members to remove in ``value``, and its
# ``emails[type eq "work"].value`` on a user with no such entry yet (the entry is created).
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)
# scimType values of RFC 7644 §3.12 a domain error's code may carry through.
_SCIM_TYPES = {
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
}


def base_url() -> str:
    return f"{settings.PUBLIC_URL}/scim/v2"


# --- what the service publishes ------------------------------------------------------------------

# attribute → sub-attributes kept (None: a simple attribute)
_USER_ATTRIBUTES: dict[str, set[str] | None] = {
    "userName": None,
    "name": {"givenName", "familyName"},
    "active": None,
    "emails": {"value"},
    "groups": {"value", "$ref", "display", "type"},
}
_GROUP_ATTRIBUTES: dict[str, set[str] | None] = {"displayName": None, "members": {"value", "$ref", "type"}}


def _reduced(schema: Schema, keep: dict[str, set[str] | None]) -> Schema:
    attributes = []
    for attribute in schema.attributes or []:
        if attribute.name not in keep:
            continue
        update: dict[str, Any] = {}
        subs = keep[attribute.name]
        if subs is not None:
            update["sub_attributes"] = [s for s in attribute.sub_attributes or [] if s.name in subs]
        if attribute.name == "active":
            # Always stored (an account is active or not), so it cannot be "removed".
            update["required"] = Required.true
        attributes.append(attribute.model_copy(update=update))
    return schema.model_copy(update={"attributes": attributes})


def _with_meta(obj: DescribedT, resource_type: str, location: str) -> DescribedT:
    obj.meta = Meta(resource_type=resource_type, location=location)
    return obj


def user_schema() -> Schema:
    return _with_meta(_reduced(ScimUser.to_schema(), _USER_ATTRIBUTES), "Schema", f"{base_url()}/Schemas/{USER_URN}")


def group_schema() -> Schema:
    return _with_meta(_reduced(ScimGroup.to_schema(), _GROUP_ATTRIBUTES), "Schema", f"{base_url()}/Schemas/{GROUP_URN}")


def resource_types() -> list[ResourceType]:
    described = (("User", "An Assay account", USER_URN), ("Group", "An Assay team", GROUP_URN))
    return [
        _with_meta(
            ResourceType.model_validate(
                {"id": name, "name": name, "description": about, "endpoint": f"/{name}s", "schema": urn}
            ),
            "ResourceType",
            f"{base_url()}/ResourceTypes/{name}",
        )
        for name, about, urn in described
    ]


def service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme.model_validate(
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "A token made by a site administrator: manage.py create_token USER --scope scim",
                    "primary": True,
                }
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base_url()}/ServiceProviderConfig"),
    )


# --- representation -----------------------------------------------------------------------------


def _version(payload: dict[str, Any]) -> str:
    return 'W/"' + hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20] + '"'


def user_resource(user: User, groups: Iterable[Team]) -> ScimUser[Any]:
    payload: dict[str, Any] = {
        "schemas": [USER_URN],
        "id": str(user.pk),
        "userName": scim_services.scim_user_name(user),
        "active": user.is_active,
    }
    if user.external_id:
        payload["externalId"] = user.external_id
    if user.first_name or user.last_name:
        payload["name"] = {k: v for k, v in (("givenName", user.first_name), ("familyName", user.last_name)) if v}
    if user.email:
        payload["emails"] = [{"value": user.email}]
    memberships = [
        {
            "value": str(t.pk),
            "$ref": f"{base_url()}/Groups/{t.pk}",
            "display": t.display_name or t.name,
            "type": "direct",
        }
        for t in groups
    ]
    if memberships:
        payload["groups"] = memberships
    resource: ScimUser[Any] = ScimUser.model_validate(payload)
    return _stamp(resource, "User", user.date_joined, user.modified_at, f"{base_url()}/Users/{user.pk}")


def group_resource(team: Team, member_ids: Iterable[int]) -> ScimGroup:
    payload: dict[str, Any] = {
        "schemas": [GROUP_URN],
        "id": str(team.pk),
        "displayName": team.display_name or team.name,
    }
    if team.external_id:
        payload["externalId"] = team.external_id
    members = [{"value": str(i), "$ref": f"{base_url()}/Users/{i}", "type": "User"} for i in member_ids]
    if members:
        payload["members"] = members
    resource = ScimGroup.model_validate(payload)
    return _stamp(resource, "Group", team.created_at, team.modified_at, f"{base_url()}/Groups/{team.pk}")


def _stamp(resource: ResourceT, kind: str, created: Any, modified: Any, location: str) -> ResourceT:
    resource.meta = Meta(resource_type=kind, created=created, last_modified=modified or created, location=location)
    body = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    resource.meta.version = _version(body)
    return resource


def _users_with_groups(users: QuerySet[User]) -> QuerySet[User]:
    return users.prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.filter(managed_by=scim_services.SCIM_MANAGER, team__scim_group=True)
            .select_related("team")
            .order_by("team_id"),
            to_attr="scim_memberships",
        )
    )


def _user_out(user: User) -> ScimUser[Any]:
    memberships = getattr(user, "scim_memberships", None)
    if memberships is None:
        memberships = list(
            Membership.objects.filter(user=user, managed_by=scim_services.SCIM_MANAGER, team__scim_group=True)
            .select_related("team")
            .order_by("team_id")
        )
    return user_resource(user, [m.team for m in memberships])


def _groups_with_members(teams: QuerySet[Team]) -> QuerySet[Team]:
    return teams.prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.filter(managed_by=scim_services.SCIM_MANAGER).order_by("user_id"),
            to_attr="scim_memberships",
        )
    )


def _group_out(team: Team) -> ScimGroup:
    memberships = getattr(team, "scim_memberships", None)
    ids = [m.user_id for m in memberships] if memberships is not None else scim_services.scim_member_ids(team)
    return group_resource(team, ids)


# --- HTTP ---------------------------------------------------------------------------------------


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(jsonsafe.dumps(payload), status=status, content_type=CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def error_response(status: int, detail: str, scim_type: str | None = None) -> HttpResponse:
    body = Error(status=status, scim_type=scim_type, detail=detail).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    response = _json(body, status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response


def _from_domain(exc: DomainError) -> HttpResponse:
    scim_type = exc.code if exc.code in _SCIM_TYPES else None
    if isinstance(exc, NotFound):
        return error_response(404, exc.message)
    if isinstance(exc, Forbidden):
        return error_response(403, exc.message)
    if isinstance(exc, Conflict):
        return error_response(409, exc.message, scim_type or "uniqueness")
    return error_response(400, exc.message, scim_type or "invalidValue")


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


View = Callable[..., HttpResponse]


def scim_view(methods: set[str]) -> Callable[[View], View]:
    """Authenticate the SCIM client, allow ``methods``, map every error to SCIM's Error."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            actor = _authenticate(request)
            if actor is None:
                return error_response(401, "A SCIM token is required: Authorization: Bearer <token>.")
            if request.method not in methods:
                response = error_response(405, f"{request.method} is not allowed here.")
                response["Allow"] = ", ".join(sorted(methods))
                return response
            try:
                with POLICY:
                    return view(request, actor, *args, **kwargs)
            except _Refused as refused:
                return refused.response
            except DomainError as exc:
                return _from_domain(exc)
            except SCIMException as exc:
                error = exc.to_error()
                return error_response(error.status or 400, error.detail or str(exc), error.scim_type)
            except ValidationError as exc:
                return error_response(400, _validation_detail(exc), _validation_scim_type(exc))

        return wrapped

    return decorate


def _authenticate(request: HttpRequest) -> User | None:
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    token = token_authenticate(raw=parts[1], scim=True)
    if token is None or not (token.user.is_active and token.user.is_staff):
        return None
    return token.user


def _validation_detail(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "The request is not valid."
    where = ".".join(str(p) for p in errors[0]["loc"] if p != "body")
    message = str(errors[0]["msg"])
    return f"{where}: {message}" if where else message


def _validation_scim_type(exc: ValidationError) -> str:
    for error in exc.errors():
        scim_type = (error.get("ctx") or {}).get("scim_type")
        if scim_type in _SCIM_TYPES:
            return str(scim_type)
    return "invalidValue"


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        payload = jsonsafe.loads(request.body) if request.body else None
    except orjson.JSONDecodeError as exc:
        raise _Refused(error_response(400, f"The request body is not valid JSON: {exc}", "invalidSyntax")) from None
    if not isinstance(payload, dict):
        raise _Refused(error_response(400, "The request body must be a JSON object.", "invalidSyntax"))
    return payload


def _attribute_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()] or None


def _response_parameters(attributes: Any, excluded: Any) -> ResponseParameters[Any] | None:
    if attributes is None and excluded is None:
        return None
    try:
        return ResponseParameters(attributes=attributes, excluded_attributes=excluded)
    except ValidationError as exc:
        raise _Refused(error_response(400, _validation_detail(exc), "invalidPath")) from None


def _query_parameters(request: HttpRequest) -> ResponseParameters[Any] | None:
    return _response_parameters(
        _attribute_list(request.GET.get("attributes")), _attribute_list(request.GET.get("excludedAttributes"))
    )


def _dump(resource: Any, params: ResponseParameters[Any] | None, ctx: Context) -> dict[str, Any]:
    payload: dict[str, Any] = resource.model_dump(scim_ctx=ctx, response_parameters=params)
    return payload


def _resource_response(
    request: HttpRequest, resource: Any, ctx: Context, status: int = 200, params: ResponseParameters[Any] | None = None
) -> HttpResponse:
    version = resource.meta.version
    if status == 200 and request.method == "GET" and version and request.headers.get("If-None-Match") == version:
        response = HttpResponse(status=304)
        response["ETag"] = version
        return response
    headers = {"ETag": version, "Location": resource.meta.location}
    return _json(_dump(resource, params, ctx), status, headers)


def _check_if_match(request: HttpRequest, current: Any) -> None:
    wanted = request.headers.get("If-Match")
    if wanted and wanted.strip() != "*" and current.meta.version not in [v.strip() for v in wanted.split(",")]:
        # RFC 7644 §3.14: 412 Precondition Failed, no scimType (invalidVers is about protocol versions)
        raise _Refused(error_response(412, "The resource changed since that version (If-Match)."))


def _int_param(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be an integer.", code="invalidValue", field=name) from None


def _list(
    kind: _Kind[Any, Any],
    *,
    filter_text: Any,
    start_index: Any,
    count: Any,
    params: ResponseParameters[Any] | None,
) -> HttpResponse:
    queryset = kind.queryset()
    if filter_text:
        if not isinstance(filter_text, str):
            raise Invalid("filter must be a string.", code="invalidFilter", field="filter")
        queryset = queryset.filter(compile_filter(filter_text, kind.filter_fields)).distinct()
    # RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0; count is capped.
    start = max(1, _int_param(start_index, "startIndex", 1))
    size = min(MAX_COUNT, max(0, _int_param(count, "count", DEFAULT_COUNT)))
    total = queryset.count()
    page = list(queryset.order_by("pk")[start - 1 : start - 1 + size]) if size else []
    resources = [kind.out(obj) for obj in page]
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": [_dump(r, params, Context.SEARCH_RESPONSE) for r in resources],
    }
    return _json(body)


def _search_body(request: HttpRequest) -> dict[str, Any]:
    body = _body(request)
    schemas = body.get("schemas")
    if schemas is not None and schemas != ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]:
        raise Invalid("A search request's schemas is the SearchRequest URN.", code="invalidSyntax", field="schemas")
    return body


# --- discovery ---------------------------------------------------------------------------------


@scim_view({"GET"})
def service_provider_config_view(request: HttpRequest, actor: User) -> HttpResponse:
    return _json(service_provider_config().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _discovery_list(items: list[Any]) -> HttpResponse:
    return _json(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(items),
            "startIndex": 1,
            "itemsPerPage": len(items),
            "Resources": [i.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for i in items],
        }
    )


def _one_of(items: list[Any], key: str, what: str) -> HttpResponse:
    for item in items:
        if item.id == key:
            return _json(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return error_response(404, f"No {what} {key!r}.")


@scim_view({"GET"})
def resource_types_view(request: HttpRequest, actor: User, key: str | None = None) -> HttpResponse:
    if request.GET.get("filter"):
        return error_response(403, "Discovery endpoints take no filter.")
    return _discovery_list(resource_types()) if key is None else _one_of(resource_types(), key, "resource type")


@scim_view({"GET"})
def schemas_view(request: HttpRequest, actor: User, key: str | None = None) -> HttpResponse:
    if request.GET.get("filter"):
        return error_response(403, "Discovery endpoints take no filter.")
    schemas = [user_schema(), group_schema()]
    return _discovery_list(schemas) if key is None else _one_of(schemas, key, "schema")


# --- users and groups ----------------------------------------------------------------------------
#
# Users and Groups are served alike (list, search, create, get, replace, patch, delete, with
# ETags); a ``_Kind`` says how one of them is read, presented, parsed and written.


@dataclass(frozen=True)
class _Kind(Generic[ObjT, ResourceT]):
    resource_model: type[ResourceT]
    patch_model: type[PatchOp[Any]]
    filter_fields: Any
    queryset: Callable[[], QuerySet[ObjT]]  # with what ``out`` reads prefetched
    out: Callable[[ObjT], ResourceT]
    get: Callable[[str], ObjT]
    create: Callable[[User, ResourceT], ObjT]  # (actor, resource)
    update: Callable[[User, ObjT, ResourceT], ObjT]  # (actor, stored object, resource)
    delete: Callable[[User, ObjT], None]  # (actor, stored object)

    def parse(self, request: HttpRequest, ctx: Context) -> ResourceT:
        return self.resource_model.model_validate(_body(request), scim_ctx=ctx)


def _collection(request: HttpRequest, actor: User, kind: _Kind[Any, Any]) -> HttpResponse:
    if request.method == "POST":
        obj = kind.create(actor, kind.parse(request, Context.RESOURCE_CREATION_REQUEST))
        return _resource_response(request, kind.out(obj), Context.RESOURCE_CREATION_RESPONSE, status=201)
    return _list(
        kind,
        filter_text=request.GET.get("filter"),
        start_index=request.GET.get("startIndex"),
        count=request.GET.get("count"),
        params=_query_parameters(request),
    )


def _search(request: HttpRequest, kind: _Kind[Any, Any]) -> HttpResponse:
    body = _search_body(request)
    return _list(
        kind,
        filter_text=body.get("filter"),
        start_index=body.get("startIndex"),
        count=body.get("count"),
        params=_response_parameters(body.get("attributes"), body.get("excludedAttributes")),
    )


def _item(request: HttpRequest, actor: User, kind: _Kind[Any, Any], key: str) -> HttpResponse:
    obj = kind.get(key)
    current = kind.out(obj)
    if request.method == "GET":
        return _resource_response(request, current, Context.RESOURCE_QUERY_RESPONSE, params=_query_parameters(request))
    _check_if_match(request, current)
    if request.method == "DELETE":
        kind.delete(actor, obj)
        return HttpResponse(status=204)
    if request.method == "PUT":
        resource = kind.parse(request, Context.RESOURCE_REPLACEMENT_REQUEST)
        ctx = Context.RESOURCE_REPLACEMENT_RESPONSE
    else:
        patch = kind.patch_model.model_validate(_body(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        resource = current
        patch.patch(resource)
        ctx = Context.RESOURCE_PATCH_RESPONSE
    obj = kind.update(actor, obj, resource)
    return _resource_response(request, kind.out(obj), ctx, params=_query_parameters(request))


def _user_fields(resource: ScimUser[Any], *, active_if_absent: bool = True) -> UserFields:
    """The account's fields from a User. ``active`` absent means active on a create, and no
    change on a replacement (a PUT that leaves it out never reactivates anyone)."""
    # One address is kept: the primary one, else the work one (Entra writes
    # emails[type eq "work"].value), else the first.
    emails = resource.emails or []
    primary = next(
        (e for e in emails if e.primary), next((e for e in emails if e.type == "work"), emails[0] if emails else None)
    )
    return UserFields(
        user_name=resource.user_name or "",
        external_id=resource.external_id or "",
        given_name=(resource.name.given_name if resource.name else None) or "",
        family_name=(resource.name.family_name if resource.name else None) or "",
        email=(primary.value if primary else None) or "",
        active=active_if_absent if resource.active is None else bool(resource.active),
    )


def _group_fields(resource: ScimGroup) -> GroupFields:
    ids: list[int] = []
    for member in resource.members or []:
        value = member.value or ""
        if not value.isdigit() or len(value) > 18:
            raise Invalid(f"No user {value!r} (members.value).", code="invalidValue", field="members")
        ids.append(int(value))
    return GroupFields(
        display_name=resource.display_name or "", external_id=resource.external_id or "", member_ids=tuple(ids)
    )


USERS: _Kind[User, ScimUser[Any]] = _Kind(
    resource_model=ScimUser,
    patch_model=PatchOp[ScimUser[Any]],
    filter_fields=USER_FIELDS,
    queryset=lambda: _users_with_groups(scim_services.scim_users()),
    out=_user_out,
    get=scim_services.scim_user_get,
    create=lambda actor, resource: scim_services.scim_user_create(actor=actor, fields=_user_fields(resource)),
    update=lambda actor, user, resource: scim_services.scim_user_update(
        actor=actor, user=user, fields=_user_fields(resource, active_if_absent=user.is_active)
    ),
    delete=lambda actor, user: scim_services.scim_user_delete(actor=actor, user=user),
)
GROUPS: _Kind[Team, ScimGroup] = _Kind(
    resource_model=ScimGroup,
    patch_model=PatchOp[ScimGroup],
    filter_fields=GROUP_FIELDS,
    queryset=lambda: _groups_with_members(scim_services.scim_groups()),
    out=_group_out,
    get=scim_services.scim_group_get,
    create=lambda actor, resource: scim_services.scim_group_create(actor=actor, fields=_group_fields(resource)),
    update=lambda actor, team, resource: scim_services.scim_group_update(
        actor=actor, team=team, fields=_group_fields(resource)
    ),
    delete=lambda actor, team: scim_services.scim_group_delete(actor=actor, team=team),
)


@scim_view({"GET", "POST"})
def users_view(request: HttpRequest, actor: User) -> HttpResponse:
    return _collection(request, actor, USERS)


@scim_view({"POST"})
def users_search_view(request: HttpRequest, actor: User) -> HttpResponse:
    return _search(request, USERS)


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def user_view(request: HttpRequest, actor: User, user_id: str) -> HttpResponse:
    return _item(request, actor, USERS, user_id)


@scim_view({"GET", "POST"})
def groups_view(request: HttpRequest, actor: User) -> HttpResponse:
    return _collection(request, actor, GROUPS)


@scim_view({"POST"})
def groups_search_view(request: HttpRequest, actor: User) -> HttpResponse:
    return _search(request, GROUPS)


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def group_view(request: HttpRequest, actor: User, group_id: str) -> HttpResponse:
    return _item(request, actor, GROUPS, group_id)


# --- the rest ----------------------------------------------------------------------------------


@scim_view({"POST"})
def root_search_view(request: HttpRequest, actor: User) -> HttpResponse:
    # Searching Users and Groups at once is optional (RFC 7644 §3.4.3); IdPs search one type.
    return error_response(501, "Search one resource type at a time: POST /Users/.search or /Groups/.search.")


@scim_view({"GET", "POST", "PUT", "PATCH", "DELETE"})
def bulk_view(request: HttpRequest, actor: User) -> HttpResponse:
    return error_response(501, "Bulk operations are not supported (ServiceProviderConfig bulk.supported is false).")


@scim_view({"GET", "POST", "PUT", "PATCH", "DELETE"})
def me_view(request: HttpRequest, actor: User) -> HttpResponse:
    return error_response(501, "/Me is not supported: SCIM clients here are identity providers.")


@scim_view({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
def unknown_view(request: HttpRequest, actor: User, rest: str = "") -> HttpResponse:
    return error_response(404, f"No SCIM endpoint at /scim/v2/{rest}.")
