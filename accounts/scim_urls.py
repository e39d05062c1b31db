"""The SCIM 2.0 endpoints, mounted at /scim/v2/ (accounts/scim.py). Paths are matched with
and without a trailing slash: identity providers send them bare."""

from __future__ import annotations

from django.urls import re_path

from accounts import scim

urlpatterns = [
    re_path(r"^ServiceProviderConfig/?$", scim.service_provider_config_view, name="scim-spc"),
    re_path(r"^ResourceTypes/?$", scim.resource_types_view, name="scim-resource-types"),
    re_path(r"^ResourceTypes/(?P<key>[^/]+)/?$", scim.resource_types_view, name="scim-resource-type"),
    re_path(r"^Schemas/?$", scim.schemas_view, name="scim-schemas"),
    re_path(r"^Schemas/(?P<key>[^/]+)/?$", scim.schemas_view, name="scim-schema"),
    re_path(r"^Users/?$", scim.users_view, name="scim-users"),
    re_path(r"^Users/\.search/?$", scim.users_search_view, name="scim-users-search"),
    re_path(r"^Users/(?P<user_id>[^/]+)/?$", scim.user_view, name="scim-user"),
    re_path(r"^Groups/?$", scim.groups_view, name="scim-groups"),
    re_path(r"^Groups/\.search/?$", scim.groups_search_view, name="scim-groups-search"),
    re_path(r"^Groups/(?P<group_id>[^/]+)/?$", scim.group_view, name="scim-group"),
    re_path(r"^\.search/?$", scim.root_search_view, name="scim-search"),
    re_path(r"^Bulk/?$", scim.bulk_view, name="scim-bulk"),
    re_path(r"^Me/?$", scim.me_view, name="scim-me"),
    re_path(r"^(?P<rest>.*)$", scim.unknown_view, name="scim-unknown"),
]
