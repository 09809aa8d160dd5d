"""exchange_sync: keep Exchange folders in sync, scripted from Python.

A sync group keeps a shared folder (the hub, usually a public folder) and many users' mailbox
folders (members, one-way readers or two-way editors) identical, in near real time. This package
is the Rust library's service API for Python:

- configuration: :class:`Config` (in code, or ``Config.load("exchange-sync.toml")``) with
  :class:`Connection`, :class:`Group`, :class:`Member`, :class:`MemberSource`, :class:`Filter`,
  :class:`Modification` and :class:`ServiceSettings`;
- the service: :class:`SyncService` (``run_once``, ``run``, ``start``/``stop``, ``plan``,
  ``status``, ``conflicts``; every blocking method has an ``*_async`` twin), progress as
  :class:`ProgressEvent` objects through callbacks or :meth:`SyncService.events`;
- reports: :class:`RunReport`, :class:`GroupReport`, :class:`MemberReport`, :class:`ErrorReport`,
  :class:`ConflictEntry`, :class:`GroupStatus`, :class:`MemberStatus`;
- item scripting: :class:`EwsFolders`, :class:`Folder`, :class:`Item`, :class:`FolderItem`;
- errors: :class:`ExchangeSyncError` and its subclasses, with ``kind``, ``retryable`` and context;
- logging: Rust ``tracing`` events go to Python :mod:`logging`; :func:`set_log_level`;
- :mod:`exchange_sync.testing`: the EWS emulator for your own tests.
"""

from ._native import (
    AuthError,
    Config,
    ConfigError,
    ConflictEntry,
    ConflictError,
    Connection,
    Diagnostic,
    ErrorReport,
    EventStream,
    EwsFolders,
    ExchangeSyncError,
    Filter,
    Folder,
    FolderInfo,
    FolderItem,
    Group,
    GroupReport,
    GroupStatus,
    Item,
    MassDeleteError,
    Member,
    MemberReport,
    MemberSource,
    MemberStatus,
    Modification,
    NotFoundError,
    InvalidSyncTokenError,
    PermanentError,
    ProgressEvent,
    RunReport,
    ServiceSettings,
    SideEntry,
    StateError,
    SyncService,
    ThrottledError,
    TransientError,
    UnreachableError,
    __version__,
    set_log_level,
)

__all__ = [
    "AuthError",
    "Config",
    "ConfigError",
    "ConflictEntry",
    "ConflictError",
    "Connection",
    "Diagnostic",
    "ErrorReport",
    "EventStream",
    "EwsFolders",
    "ExchangeSyncError",
    "Filter",
    "Folder",
    "FolderInfo",
    "FolderItem",
    "Group",
    "GroupReport",
    "GroupStatus",
    "Item",
    "MassDeleteError",
    "Member",
    "MemberReport",
    "MemberSource",
    "MemberStatus",
    "Modification",
    "NotFoundError",
    "InvalidSyncTokenError",
    "PermanentError",
    "ProgressEvent",
    "RunReport",
    "ServiceSettings",
    "SideEntry",
    "StateError",
    "SyncService",
    "ThrottledError",
    "TransientError",
    "UnreachableError",
    "__version__",
    "set_log_level",
]
