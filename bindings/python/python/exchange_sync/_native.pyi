"""Type stubs of the native module behind ``exchange_sync`` (import ``exchange_sync``)."""

from __future__ import annotations

import asyncio
import datetime
import os
from typing import Any, Callable, final, Dict, Iterator, AsyncIterator, List, Literal, Mapping, Optional, Sequence, Union

__version__: str

FieldValue = Union[str, int, bool, datetime.datetime, List[str]]
"""The value of a canonical item field."""

Direction = Literal["one_way", "two_way"]
LocalChange = Literal["revert", "ignore"]
EventCallback = Callable[["ProgressEvent"], object]
PathLike = Union[str, "os.PathLike[str]"]

def _stop_log_forwarding() -> None:
    """Stops forwarding Rust logs to Python (at interpreter exit)."""

def set_log_level(level: Literal["error", "warn", "warning", "info", "debug", "trace"]) -> None:
    """Sets how verbose Rust logging is (default ``info``); Python logger levels filter further."""

# ----- errors --------------------------------------------------------------------------------

class ExchangeSyncError(Exception):
    """Every error of exchange_sync, with the Rust error's classification and context."""

    kind: str
    """The error class in snake case: ``config``, ``auth``, ``throttled``, ``precondition_failed``,
    ``mass_delete``, ``not_found``, ``transient``, ``permanent``, ``state``, ..."""
    retryable: bool
    """Whether retrying the same operation later can succeed."""
    message: str
    """The full message, with context (never a secret)."""
    group: Optional[str]
    """The sync group concerned, when known."""
    member: Optional[str]
    """The member folder concerned (``hub`` for the hub), when known."""
    folder: Optional[str]
    """The folder concerned, as described by the connector, when known."""
    mailbox: Optional[str]
    """The mailbox concerned, when the folder names one."""
    item: Optional[str]
    """The item concerned, when known."""
    operation: Optional[str]
    """The operation that failed, when known."""
    connection: Optional[str]
    """The connection concerned, for connection errors."""
    retry_after: Optional[float]
    """The delay the server asked for, in seconds (throttling)."""
    diagnostics: List[Diagnostic]
    """Configuration findings (``ConfigError``)."""

class ConfigError(ExchangeSyncError):
    """The configuration is invalid; ``diagnostics`` lists every finding."""

class AuthError(ExchangeSyncError):
    """Credentials or rights are missing."""

class UnreachableError(ExchangeSyncError):
    """The server cannot be reached (refused, unknown host) or is not trusted (certificate)."""

class ThrottledError(ExchangeSyncError):
    """The server asked to slow down (``retry_after``)."""

class ConflictError(ExchangeSyncError):
    """The item changed since it was read (a precondition failed)."""

class MassDeleteError(ExchangeSyncError):
    """The mass-delete guard stopped a group."""

class NotFoundError(ExchangeSyncError):
    """The item or folder does not exist."""

class InvalidSyncTokenError(ExchangeSyncError):
    """A folder's sync token is no longer accepted; the engine starts that folder over."""

class TransientError(ExchangeSyncError):
    """A passing failure (network hiccup, timeout): retrying may succeed."""

class PermanentError(ExchangeSyncError):
    """A failure that retrying will not fix."""

class StateError(ExchangeSyncError):
    """The state store failed."""

@final
class Diagnostic:
    """One finding of configuration validation."""

    @property
    def text(self) -> str:
        """The whole diagnostic in one line, as ``str()`` gives it."""

    @property
    def severity(self) -> Literal["error", "warning"]:
        """Error or warning."""
    @property
    def path(self) -> str:
        """The configuration path, e.g. ``groups[0].members[2].filter``."""
    @property
    def message(self) -> str:
        """What is wrong, and how to fix it."""
    @property
    def file(self) -> Optional[str]:
        """The file, when the configuration came from one."""
    @property
    def line(self) -> Optional[int]:
        """1-based line, when known."""
    @property
    def column(self) -> Optional[int]:
        """1-based column, when known."""

# ----- configuration -------------------------------------------------------------------------

@final
class Filter:
    """Which items a one-way member receives; combine with ``&``, ``|``, ``~``."""

    @staticmethod
    def category(name: str) -> Filter:
        """The item carries this category."""
    @staticmethod
    def kind(kind: str) -> Filter:
        """The item is of this kind (``contact``, ``calendar_item``, ``task``, ``note``, ...)."""
    @staticmethod
    def field_equals(field: str, value: str) -> Filter:
        """The canonical field equals ``value``."""
    @staticmethod
    def field_contains(field: str, text: str) -> Filter:
        """The canonical field contains ``text``."""
    @staticmethod
    def field_exists(field: str) -> Filter:
        """The canonical field has a non-empty value."""
    @staticmethod
    def all(*filters: Filter) -> Filter:
        """Every filter holds."""
    @staticmethod
    def any(*filters: Filter) -> Filter:
        """At least one filter holds."""
    @staticmethod
    def not_(filter: Filter) -> Filter:
        """The filter does not hold."""
    def __and__(self, other: Filter, /) -> Filter: ...
    def __rand__(self, other: Filter, /) -> Filter: ...
    def __or__(self, other: Filter, /) -> Filter: ...
    def __ror__(self, other: Filter, /) -> Filter: ...
    def __invert__(self) -> Filter: ...

@final
class Modification:
    """How a one-way member's copies differ from the shared items."""

    @staticmethod
    def set_field(field: str, value: str) -> Modification:
        """Sets a canonical field to a text value."""
    @staticmethod
    def clear_field(field: str) -> Modification:
        """Removes a canonical field."""
    @staticmethod
    def clear_body() -> Modification:
        """Removes the body."""
    @staticmethod
    def add_category(category: str) -> Modification:
        """Adds a category."""
    @staticmethod
    def remove_category(category: str) -> Modification:
        """Removes a category."""
    @staticmethod
    def meetings_to_appointments() -> Modification:
        """Turns meetings into plain appointments."""

@final
class Member:
    """One member mailbox folder of a group: a two-way editor or a one-way reader."""

    def __new__(
        cls,
        mailbox: str,
        direction: Direction = "two_way",
        *,
        id: Optional[str] = None,
        target: Optional[str] = None,
        on_edit: Optional[LocalChange] = None,
        on_delete: Optional[LocalChange] = None,
        adopt_new_items: Optional[bool] = None,
        propagate_deletes: Optional[bool] = None,
        filter: Optional[Filter] = None,
        modifications: Sequence[Modification] = ...,
    ) -> Member: ...
    @property
    def id(self) -> str:
        """The member's id within the group (default: the mailbox address)."""
    @property
    def mailbox(self) -> str:
        """The mailbox address."""
    @property
    def direction(self) -> Direction:
        """``one_way`` or ``two_way``."""
    @property
    def target(self) -> Optional[str]:
        """The target folder, as written in files (``None``: the group's)."""

@final
class MemberSource:
    """Members taken from a distribution group and kept current."""

    def __new__(
        cls,
        distribution_group: str,
        direction: Direction = "one_way",
        *,
        refresh_secs: int = 300,
        target: Optional[str] = None,
        on_edit: Optional[LocalChange] = None,
        on_delete: Optional[LocalChange] = None,
        adopt_new_items: Optional[bool] = None,
        propagate_deletes: Optional[bool] = None,
        filter: Optional[Filter] = None,
        modifications: Sequence[Modification] = ...,
    ) -> MemberSource: ...
    @property
    def distribution_group(self) -> str:
        """The distribution group's address."""

@final
class Connection:
    """A server connection: EWS URL or Autodiscover address, authentication, TLS options."""

    def __new__(
        cls,
        id: str,
        url: Optional[str] = None,
        *,
        autodiscover: Optional[str] = None,
        auth: Literal["basic", "ntlm", "negotiate", "kerberos", "oauth2", "none"] = "basic",
        username: Optional[str] = None,
        password: Optional[str] = None,
        password_env: Optional[str] = None,
        password_file: Optional[PathLike] = None,
        token: Optional[str] = None,
        token_env: Optional[str] = None,
        token_file: Optional[PathLike] = None,
        impersonation: bool = True,
        ca_file: Optional[PathLike] = None,
        insecure: bool = False,
    ) -> Connection: ...
    @property
    def id(self) -> str:
        """The id groups refer to."""
    @property
    def url(self) -> Optional[str]:
        """The EWS URL, when given."""
    @property
    def autodiscover(self) -> Optional[str]:
        """The Autodiscover address, when given."""
    @property
    def auth(self) -> str:
        """The authentication scheme."""
    @property
    def impersonation(self) -> bool:
        """Whether members are reached through impersonation."""

@final
class Group:
    """A sync group: a hub kept in sync with member folders."""

    def __new__(
        cls,
        id: str,
        connection: str,
        *,
        public_folder: Optional[str] = None,
        hub_mailbox: Optional[str] = None,
        hub_folder: Optional[str] = None,
        members: Sequence[Member] = ...,
        member_sources: Sequence[MemberSource] = ...,
        target: Optional[str] = None,
        conflict_policy: Literal["hub_wins", "newest_wins", "member_priority"] = "hub_wins",
        priority: Optional[Sequence[str]] = None,
        match_key: Sequence[str] = ...,
        mass_delete_max_share: Optional[float] = None,
        mass_delete_min_count: Optional[int] = None,
        on_leave: Literal["remove", "keep"] = "remove",
        take_over_matches: bool = False,
    ) -> Group: ...
    @property
    def id(self) -> str:
        """The group's id."""
    @property
    def connection(self) -> str:
        """The connection's id."""
    @property
    def hub(self) -> str:
        """The hub, described."""
    @property
    def members(self) -> List[Member]:
        """The members listed one by one."""
    @property
    def target(self) -> str:
        """The default target folder of members."""

@final
class ServiceSettings:
    """How the service runs: state location, timings, concurrency, retries."""

    def __new__(
        cls,
        *,
        state: Optional[str] = None,
        debounce_ms: Optional[int] = None,
        poll_interval_secs: Optional[float] = None,
        resync_interval_secs: Optional[float] = None,
        max_concurrent_groups: Optional[int] = None,
        shutdown_grace_secs: Optional[float] = None,
        retry_initial_delay_ms: Optional[int] = None,
        retry_max_delay_ms: Optional[int] = None,
        retry_max_attempts: Optional[int] = None,
    ) -> ServiceSettings: ...
    @property
    def state(self) -> str:
        """``memory``, or the SQLite file's path."""
    @property
    def debounce_ms(self) -> int:
        """Debounce of change hints, in milliseconds."""
    @property
    def poll_interval_secs(self) -> float:
        """Polling interval, in seconds."""
    @property
    def resync_interval_secs(self) -> float:
        """Safety re-sync interval, in seconds."""
    @property
    def max_concurrent_groups(self) -> int:
        """How many groups sync at the same time."""
    @property
    def retry_max_attempts(self) -> int:
        """How many attempts a failing pass gets."""

@final
class Config:
    """The whole configuration, validated at construction."""

    def __new__(
        cls,
        *,
        connections: Sequence[Connection] = ...,
        groups: Sequence[Group] = ...,
        service: Optional[ServiceSettings] = None,
    ) -> Config: ...
    @staticmethod
    def load(path: PathLike) -> Config:
        """Reads, parses and validates a TOML configuration file."""
    @staticmethod
    def from_toml(text: str, file: Optional[PathLike] = None) -> Config:
        """Parses and validates a configuration from TOML text."""
    @property
    def warnings(self) -> List[Diagnostic]:
        """The warnings validation found."""
    @property
    def service(self) -> ServiceSettings:
        """The service settings."""
    @property
    def connections(self) -> List[Connection]:
        """The connections."""
    @property
    def groups(self) -> List[Group]:
        """The groups."""
    def with_service(self, service: ServiceSettings) -> Config:
        """A copy with other service settings."""

# ----- reports -------------------------------------------------------------------------------

@final
class ErrorReport:
    """An error with its context, as reports and events carry it."""

    @property
    def kind(self) -> str:
        """The error class in snake case."""
    @property
    def retryable(self) -> bool:
        """Whether retrying can help."""
    @property
    def message(self) -> str:
        """The full message."""
    @property
    def member(self) -> Optional[str]:
        """The member folder concerned."""
    @property
    def item(self) -> Optional[str]:
        """The item concerned."""
    @property
    def operation(self) -> Optional[str]:
        """The operation that failed."""
    def to_exception(self) -> ExchangeSyncError:
        """The exception this error would raise."""

@final
class MemberReport:
    """What one pass did in one folder of a group."""

    @property
    def member(self) -> str:
        """The member id (``hub``, or ``total`` for totals)."""
    @property
    def created(self) -> int:
        """Copies created."""
    @property
    def updated(self) -> int:
        """Copies updated (reverts included)."""
    @property
    def deleted(self) -> int:
        """Copies deleted."""
    @property
    def reverted(self) -> int:
        """Local changes of a one-way member put back."""
    @property
    def conflicts(self) -> int:
        """Field conflicts resolved."""
    @property
    def errors(self) -> List[ErrorReport]:
        """Actions that failed here."""

@final
class SideEntry:
    """One side's value in a conflict."""

    @property
    def member(self) -> str:
        """The member id."""
    @property
    def value(self) -> Optional[str]:
        """The value (``None``: cleared)."""

@final
class ConflictEntry:
    """One resolved conflict: what was kept and what was not."""

    @property
    def text(self) -> str:
        """The whole conflictEntry in one line, as ``str()`` gives it."""

    @property
    def group(self) -> str:
        """The group."""
    @property
    def entity(self) -> str:
        """The entity (the logical item)."""
    @property
    def field(self) -> str:
        """The field."""
    @property
    def base(self) -> Optional[str]:
        """The value both sides started from."""
    @property
    def winner(self) -> SideEntry:
        """The value kept."""
    @property
    def losers(self) -> List[SideEntry]:
        """The values not kept."""
    @property
    def policy(self) -> str:
        """The policy that decided."""
    @property
    def recorded_at(self) -> datetime.datetime:
        """When (UTC)."""

PassOutcome = Literal["synced", "partially_failed", "failed", "stopped_by_mass_delete_guard", "planned"]

@final
class GroupReport:
    """What one pass did in one group."""

    @property
    def text(self) -> str:
        """The whole groupReport in one line, as ``str()`` gives it."""

    @property
    def group(self) -> str:
        """The group id."""
    @property
    def outcome(self) -> PassOutcome:
        """How the pass ended."""
    @property
    def members(self) -> List[MemberReport]:
        """Per folder, only folders with writes, conflicts or errors."""
    @property
    def conflicts(self) -> List[ConflictEntry]:
        """Conflicts resolved in this pass."""
    @property
    def errors(self) -> List[ErrorReport]:
        """Errors that stopped the pass."""
    @property
    def started_at(self) -> datetime.datetime:
        """When the pass started (UTC)."""
    @property
    def duration(self) -> float:
        """How long it took, in seconds."""
    @property
    def attempts(self) -> int:
        """How many attempts it took."""
    @property
    def plan(self) -> Optional[str]:
        """The dry run's plan as text."""
    def totals(self) -> MemberReport:
        """Totals over every member."""
    def member(self, member: str) -> Optional[MemberReport]:
        """The report of one member, if it wrote anything or had errors."""

@final
class RunReport:
    """What one run (each selected group once) did."""

    @property
    def groups(self) -> List[GroupReport]:
        """Per group."""
    @property
    def started_at(self) -> datetime.datetime:
        """When the run started (UTC)."""
    @property
    def duration(self) -> float:
        """How long it took, in seconds."""
    def is_clean(self) -> bool:
        """Whether every group synced (or planned) without error."""
    def mass_delete_stopped(self) -> bool:
        """Whether the mass-delete guard stopped a group."""
    def group(self, group: str) -> Optional[GroupReport]:
        """The report of one group."""
    def raise_for_errors(self) -> None:
        """Raises the exception of the first error of the run, if any."""

@final
class MemberStatus:
    """The status of one folder of a group."""

    @property
    def member(self) -> str:
        """The member id."""
    @property
    def folder(self) -> str:
        """The folder, as configured."""
    @property
    def direction(self) -> Literal["hub", "one_way", "two_way"]:
        """The folder's role."""
    @property
    def initialized(self) -> bool:
        """Whether the initial sync completed."""
    @property
    def last_sync(self) -> Optional[datetime.datetime]:
        """When the folder last completed a sync."""
    @property
    def last_error(self) -> Optional[str]:
        """The last error that stopped the folder's sync."""
    @property
    def copies(self) -> int:
        """How many copies of the group's items the folder holds."""
    @property
    def pending_creates(self) -> int:
        """Creates started and not yet confirmed."""

@final
class GroupStatus:
    """The status of one group."""

    @property
    def group(self) -> str:
        """The group id."""
    @property
    def members(self) -> List[MemberStatus]:
        """The hub first, then the members."""
    @property
    def stopped_by_mass_delete_guard(self) -> bool:
        """Whether the mass-delete guard stopped the group."""
    @property
    def last_report(self) -> Optional[GroupReport]:
        """The last pass's report, when this process ran one."""

EventKind = Literal[
    "service_started",
    "pass_started",
    "planned",
    "written",
    "pass_finished",
    "retrying",
    "member_joined",
    "member_left",
    "service_stopped",
    "lagged",
]

@final
class ProgressEvent:
    """One progress event; attributes that do not apply to its kind are ``None``."""

    @property
    def kind(self) -> EventKind:
        """Which event this is."""
    @property
    def group(self) -> Optional[str]:
        """The group concerned."""
    @property
    def trigger(self) -> Optional[str]:
        """Why a pass started."""
    @property
    def groups(self) -> Optional[List[str]]:
        """The groups of a starting service."""
    @property
    def report(self) -> Optional[GroupReport]:
        """A finished pass's report."""
    @property
    def actions(self) -> Optional[int]:
        """How many writes a plan holds."""
    @property
    def conflicts(self) -> Optional[int]:
        """How many conflicts a plan resolved."""
    @property
    def written(self) -> Optional[int]:
        """Writes of the pass done so far (``written``; ``actions`` holds the planned total)."""
    @property
    def error(self) -> Optional[ErrorReport]:
        """The error of a retried pass."""
    @property
    def attempt(self) -> Optional[int]:
        """The failed attempt."""
    @property
    def retry_in(self) -> Optional[float]:
        """The delay before the next attempt, in seconds."""
    @property
    def member(self) -> Optional[str]:
        """The member that joined or left."""
    @property
    def copies_removed(self) -> Optional[bool]:
        """Whether a leaver's copies were removed."""
    @property
    def missed(self) -> Optional[int]:
        """How many events were missed (``lagged``)."""

# ----- items ---------------------------------------------------------------------------------

@final
class Item:
    """A normalized item: kind, canonical fields, body, categories."""

    def __new__(
        cls,
        kind: str = "contact",
        fields: Optional[Mapping[str, FieldValue]] = None,
        *,
        body: Optional[str] = None,
        body_format: Literal["text", "html"] = "text",
        categories: Sequence[str] = ...,
    ) -> Item: ...
    @property
    def kind(self) -> str:
        """The kind."""
    @property
    def fields(self) -> Dict[str, FieldValue]:
        """A copy of the fields."""
    @fields.setter
    def fields(self, fields: Mapping[str, FieldValue]) -> None: ...
    @property
    def body(self) -> Optional[str]:
        """The body's content."""
    @body.setter
    def body(self, body: Optional[str]) -> None: ...
    @property
    def body_format(self) -> Literal["text", "html"]:
        """The body's format."""
    @property
    def categories(self) -> List[str]:
        """The categories, sorted."""
    @categories.setter
    def categories(self, categories: Sequence[str]) -> None: ...
    def get(self, name: str, default: Optional[FieldValue] = None) -> Optional[FieldValue]:
        """The value of a field, or ``default``."""
    def __getitem__(self, name: str, /) -> FieldValue: ...
    def __setitem__(self, name: str, value: FieldValue, /) -> None: ...
    def __delitem__(self, name: str, /) -> None: ...
    def __contains__(self, name: str, /) -> bool: ...
    def same_content(self, other: Item) -> bool:
        """Whether two items have the same content, as the sync engine compares them."""

@final
class FolderItem:
    """An item of a folder: id, version and content."""

    @property
    def id(self) -> str:
        """The item's id in this folder."""
    @property
    def version(self) -> str:
        """The current version (the EWS change key)."""
    @property
    def item(self) -> Item:
        """The content."""
    @property
    def synced(self) -> bool:
        """Whether a sync group created or adopted it."""

@final
class FolderInfo:
    """A subfolder."""

    @property
    def id(self) -> str:
        """The folder's id."""
    @property
    def name(self) -> str:
        """Its display name."""
    @property
    def folder_class(self) -> Optional[str]:
        """Its class."""
    @property
    def total_count(self) -> Optional[int]:
        """How many items it holds."""
    @property
    def child_folder_count(self) -> Optional[int]:
        """How many subfolders it has."""

@final
class Folder:
    """A mailbox or public folder opened for item operations."""

    @property
    def description(self) -> str:
        """The folder's description."""
    def subfolders(self) -> List[FolderInfo]:
        """The direct subfolders."""
    def subfolders_async(self) -> asyncio.Future[List[FolderInfo]]:
        """The direct subfolders (awaitable)."""
    def items(self) -> List[FolderItem]:
        """Every item, with content."""
    def items_async(self) -> asyncio.Future[List[FolderItem]]:
        """Every item (awaitable)."""
    def get(self, id: str) -> FolderItem:
        """One item by id."""
    def get_async(self, id: str) -> asyncio.Future[FolderItem]:
        """One item by id (awaitable)."""
    def create(self, item: Item) -> str:
        """Creates an item; returns its id."""
    def create_async(self, item: Item) -> asyncio.Future[str]:
        """Creates an item (awaitable of its id)."""
    def update(
        self,
        id: str,
        fields: Optional[Mapping[str, Optional[FieldValue]]] = None,
        *,
        body: Optional[str] = None,
        clear_body: bool = False,
        categories: Optional[Sequence[str]] = None,
    ) -> None:
        """Changes an item as a user would (guarded by the version read)."""
    def update_async(
        self,
        id: str,
        fields: Optional[Mapping[str, Optional[FieldValue]]] = None,
        *,
        body: Optional[str] = None,
        clear_body: bool = False,
        categories: Optional[Sequence[str]] = None,
    ) -> asyncio.Future[None]:
        """Changes an item (awaitable)."""
    def delete(self, id: str) -> None:
        """Deletes an item."""
    def delete_async(self, id: str) -> asyncio.Future[None]:
        """Deletes an item (awaitable)."""

@final
class EwsFolders:
    """The connections of a configuration, opened for item scripting."""

    def __new__(cls, config: Config) -> EwsFolders: ...
    @staticmethod
    def connect_async(config: Config) -> asyncio.Future[EwsFolders]:
        """Connects without blocking the event loop."""
    def public_folder(self, path: str, *, connection: Optional[str] = None) -> Folder:
        """A public folder by its ``/``-separated path (``""``: the root)."""
    def public_folder_async(self, path: str, *, connection: Optional[str] = None) -> asyncio.Future[Folder]:
        """A public folder (awaitable)."""
    def mailbox_folder(
        self, mailbox: str, folder: str = "contacts", *, create: bool = False, connection: Optional[str] = None
    ) -> Folder:
        """A folder of a mailbox (``contacts``, ``contacts/Company Contacts``, ...)."""
    def mailbox_folder_async(
        self, mailbox: str, folder: str = "contacts", *, create: bool = False, connection: Optional[str] = None
    ) -> asyncio.Future[Folder]:
        """A folder of a mailbox (awaitable)."""

# ----- service -------------------------------------------------------------------------------

@final
class EventStream:
    """Progress events: a blocking iterator and an async iterator; ends after ``service_stopped``."""

    def next(self, timeout: Optional[float] = None) -> Optional[ProgressEvent]:
        """The next event, waiting at most ``timeout`` seconds."""
    def next_async(self, timeout: Optional[float] = None) -> asyncio.Future[Optional[ProgressEvent]]:
        """The next event (awaitable)."""
    def __iter__(self) -> Iterator[ProgressEvent]: ...
    def __next__(self) -> ProgressEvent: ...
    def __aiter__(self) -> AsyncIterator[ProgressEvent]: ...
    def __anext__(self) -> asyncio.Future[ProgressEvent]: ...

@final
class SyncService:
    """Runs sync groups: the Rust ``SyncService``."""

    def __new__(cls, config: Config) -> SyncService: ...
    @staticmethod
    def connect_async(config: Config) -> asyncio.Future[SyncService]:
        """Connects without blocking the event loop."""
    @property
    def folders(self) -> EwsFolders:
        """The folders of the service's connections, for scripting."""
    @property
    def groups(self) -> List[str]:
        """The group ids."""
    @property
    def running(self) -> bool:
        """Whether a service started with ``start()`` is running."""
    def run_once(
        self,
        *,
        groups: Optional[Sequence[str]] = None,
        allow_mass_delete: bool = False,
        on_event: Optional[EventCallback] = None,
    ) -> RunReport:
        """One pass of each selected group."""
    def run_once_async(
        self,
        *,
        groups: Optional[Sequence[str]] = None,
        allow_mass_delete: bool = False,
        on_event: Optional[EventCallback] = None,
    ) -> asyncio.Future[RunReport]:
        """One pass of each selected group (awaitable)."""
    def plan(self, *, groups: Optional[Sequence[str]] = None, on_event: Optional[EventCallback] = None) -> RunReport:
        """The dry run."""
    def plan_async(
        self, *, groups: Optional[Sequence[str]] = None, on_event: Optional[EventCallback] = None
    ) -> asyncio.Future[RunReport]:
        """The dry run (awaitable)."""
    def run(self, *, on_event: Optional[EventCallback] = None) -> None:
        """Runs in real time until ``shutdown()`` or Ctrl-C."""
    def run_async(self) -> asyncio.Future[None]:
        """Runs in real time until ``shutdown()`` (awaitable)."""
    def start(self, *, on_event: Optional[EventCallback] = None) -> None:
        """Starts the real-time service in the background."""
    def stop(self) -> None:
        """Stops a service started with ``start()``."""
    def shutdown(self) -> None:
        """Asks a running service to stop."""
    def status(self) -> List[GroupStatus]:
        """Per group and folder: initialization, last sync, errors, copies, pending work."""
    def status_async(self) -> asyncio.Future[List[GroupStatus]]:
        """The status (awaitable)."""
    def conflicts(self, group: Optional[str] = None) -> List[ConflictEntry]:
        """The conflict log."""
    def conflicts_async(self, group: Optional[str] = None) -> asyncio.Future[List[ConflictEntry]]:
        """The conflict log (awaitable)."""
    def events(self) -> EventStream:
        """Progress events from now on."""

# ----- testing -------------------------------------------------------------------------------

@final
class Emulator:
    """An EWS emulator running in this process (see ``exchange_sync.testing``)."""

    def __new__(
        cls,
        *,
        contacts: int = 25,
        users: Optional[Sequence[str]] = None,
        password: str = ...,
        domain: str = ...,
        server_version: str = "Exchange2016",
        latency_ms: int = 0,
        busy_rate: float = 0.0,
        max_concurrency: int = 27,
        heartbeat_secs: float = 1.0,
        trace_dir: Optional[PathLike] = None,
    ) -> Emulator: ...
    @property
    def url(self) -> str:
        """The EWS endpoint."""
    @property
    def autodiscover_url(self) -> str:
        """The SOAP Autodiscover endpoint."""
    @property
    def admin(self) -> str:
        """The account with impersonation rights."""
    @property
    def password(self) -> str:
        """The password of every account."""
    @property
    def users(self) -> List[str]:
        """The user mailboxes' addresses."""
    @property
    def running(self) -> bool:
        """Whether it is still serving."""
    def connection(self, id: str = ...) -> Connection:
        """A connection to this emulator as the admin account."""
    def inject(
        self, fault: Literal["drop_after_write", "internal_server_error", "service_unavailable", "server_busy"]
    ) -> None:
        """Queues a fault for the next request it applies to."""
    def stop(self) -> None:
        """Stops serving."""
    def __enter__(self) -> Emulator: ...
    def __exit__(self, *args: Any) -> bool: ...
