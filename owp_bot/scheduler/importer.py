"""Parse a YAML task file into repo and task specs; every entry that cannot be imported says why.

    repos:                      # optional: create or update these repos first
      acme/api: {max_open_prs: 3}
    defaults: {repo: acme/api}  # optional: fields every task gets unless it sets them
    tasks:
      - key: api-12             # `key` or `id`: importing again updates instead of duplicating
        title: Add rate limiting to /login
        estimate_points: 3
        required_skills: [python, security]
        area: auth
        priority: high

Plain values are text as written (`area: 1.10`, `key: on`) unless YAML 1.2 makes them null or a boolean; a key is
the maintainer's own and never matches the task of a GitHub issue (docs/protocol.md, "Importing tasks").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from owp_bot.config import parse_duration
from owp_bot.errors import Problem
from owp_bot.protocol.models import NewTask, RepoName, RepoSettings
from owp_bot.scheduler.models import Priority, TrustTier
from owp_bot.scheduler.operations import RepoSpec, TaskSpec

# libyaml's safe loader when PyYAML was built with it (about 10x faster on large imports), else the Python one
_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_REPO_NAME: TypeAdapter[str] = TypeAdapter(RepoName)


class _SafeLoader(_BASE_LOADER):  # type: ignore[valid-type,misc]
    """The safe loader, with two changes.

    A plain scalar is text unless it is YAML 1.2's null (`~`, `null`, nothing) or boolean (`true`, `false`):
    PyYAML follows YAML 1.1, where `on`, `yes` and `no` are booleans and `1.10`, `017`, `1_000` or `2024-05-01`
    numbers and dates, so a key, title or area would change without a word. The models read numbers from text
    where they take one (`estimate_points: 3`).

    A key used twice in one mapping is refused: PyYAML would keep the last silently, and a second `tasks:` would
    drop every task of the first.
    """

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: the keys written beside it override the merged ones, as YAML says
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                continue  # unhashable: PyYAML's own error
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found the key {key!r} twice; each key may appear once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


_SafeLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                  ["~", "n", "N", ""])
_SafeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))
_SafeLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])  # `<<: *defaults`
_SAFE_LOADER = _SafeLoader


@dataclass
class ParsedImport:
    repos: list[RepoSpec] = field(default_factory=list)
    tasks: list[tuple[int, TaskSpec]] = field(default_factory=list)
    rejected: dict[int, tuple[str | None, list[str]]] = field(default_factory=dict)  # index -> key, errors
    keys: dict[int, str | None] = field(default_factory=dict)


def task_spec(task: NewTask) -> TaskSpec:
    return TaskSpec(
        repo=task.repo, title=task.title, key=task.key, url=task.url, issue_number=task.issue_number,
        estimate_points=task.estimate_points, required_skills=tuple(task.required_skills), area=task.area,
        priority=Priority[task.priority.name.upper()], min_trust=TrustTier[task.min_trust.name.upper()],
    )


def repo_spec(repo: str, settings: RepoSettings) -> RepoSpec:
    return RepoSpec(
        repo=repo, max_open_prs=settings.max_open_prs, area_locks=settings.area_locks,
        lease_ttl=None if settings.lease_ttl is None else parse_duration(settings.lease_ttl, "lease_ttl"),
        offer_ttl=None if settings.offer_ttl is None else parse_duration(settings.offer_ttl, "offer_ttl"),
        sensitive_areas=tuple(settings.sensitive_areas),
    )


_ADVICE = {"bool_type": "; write true or false"}  # YAML 1.2: yes, no, on and off are words


def _messages(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}{_ADVICE.get(e['type'], '')}"
            for e in exc.errors(include_url=False, include_context=False, include_input=False)]


def parse_import(text: str) -> ParsedImport:
    try:
        document = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise Problem(400, f"the document is not valid YAML: {exc}") from None
    if document is None or document == "":  # an empty document imports nothing
        document = {}
    if isinstance(document, list):
        document = {"tasks": document}
    if not isinstance(document, dict) or not isinstance(document.get("tasks", []), list):
        raise Problem(422, "the document needs a `tasks:` list (optionally `repos:` and `defaults:`); "
                           "see docs/protocol.md, 'Importing tasks'")
    unknown = set(document) - {"repos", "defaults", "tasks"}
    if unknown:
        raise Problem(422, f"unknown top-level keys {sorted(unknown)}; use repos, defaults and tasks")
    parsed = ParsedImport()
    repos = document.get("repos") or {}
    if not isinstance(repos, dict):
        raise Problem(422, "`repos:` maps owner/name to settings, e.g. `acme/api: {max_open_prs: 3}`")
    for name, settings in repos.items():
        try:
            _REPO_NAME.validate_python(str(name))
        except ValidationError:
            raise Problem(422, f"repos.{name}: not a GitHub repository name (owner/name)") from None
        try:
            parsed.repos.append(repo_spec(str(name), RepoSettings.model_validate(settings or {})))
        except ValidationError as exc:
            raise Problem(422, f"repos.{name}: " + "; ".join(_messages(exc))) from None
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise Problem(422, "`defaults:` must be a mapping of task fields")
    seen: dict[str, int] = {}
    for index, entry in enumerate(document.get("tasks") or []):
        if not isinstance(entry, dict):
            parsed.rejected[index] = (None, ["each task is a mapping of fields (title, repo, …)"])
            continue
        fields: dict[str, Any] = {**defaults, **entry}
        if "id" in fields and "key" not in fields:
            fields["key"] = fields.pop("id")
        key = fields["key"] if isinstance(fields.get("key"), str) else None  # not text: the entry's error says so
        parsed.keys[index] = key
        try:
            task = NewTask.model_validate(fields)
        except ValidationError as exc:
            parsed.rejected[index] = (key, _messages(exc))
            continue
        if task.key is not None:
            scoped = f"{task.repo}#{task.key}"
            if scoped in seen:
                parsed.rejected[index] = (key, [f"key {task.key!r} already used by entry {seen[scoped]} "
                                                "of this document"])
                continue
            seen[scoped] = index
        parsed.tasks.append((index, task_spec(task)))
    return parsed
