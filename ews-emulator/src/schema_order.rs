//! Element order of the EWS item types, as the `xs:sequence`s of `types.xsd` define it.
//!
//! EWS rejects (and the schema check flags) fields out of order, so every item the emulator
//! writes is sorted with these lists. They list element names only, extracted from the schema.
//! Every item type extends `t:ItemType`: its order is the base's elements, then its own.

/// Child order of `t:ItemType`, the base of every item type.
pub const ITEM: &[&str] = &[
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderNextTime",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "DisplayBcc",
    "HasAttachments",
    "ExtendedProperty",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    "Flag",
    "StoreEntryId",
    "InstanceKey",
    "NormalizedBody",
    "EntityExtractionResult",
    "PolicyTag",
    "ArchiveTag",
    "RetentionDate",
    "Preview",
    "RightsManagementLicenseData",
    "PredictedActionReasons",
    "IsClutter",
    "BlockStatus",
    "HasBlockedImages",
    "TextBody",
    "IconIndex",
    "SearchKey",
    "SortKey",
    "Hashtags",
    "Mentions",
    "MentionedMe",
    "MentionsPreview",
    "MentionsEx",
    "AppliedHashtags",
    "AppliedHashtagsPreview",
    "Likes",
    "LikesPreview",
    "PendingSocialActivityTagIds",
    "AtAllMention",
    "CanDelete",
    "InferenceClassification",
];

/// The elements `t:MessageType` adds to `t:ItemType`, in order.
const MESSAGE_OWN: &[&str] = &[
    "Sender",
    "ToRecipients",
    "CcRecipients",
    "BccRecipients",
    "IsReadReceiptRequested",
    "IsDeliveryReceiptRequested",
    "ConversationIndex",
    "ConversationTopic",
    "From",
    "InternetMessageId",
    "IsRead",
    "IsResponseRequested",
    "References",
    "ReplyTo",
    "ReceivedBy",
    "ReceivedRepresenting",
    "ApprovalRequestData",
    "VotingInformation",
    "ReminderMessageData",
    "MessageSafety",
    "SenderSMTPAddress",
    "MailboxGuids",
    "MailboxGuid",
    "PublishedCalendarItemIcs",
    "PublishedCalendarItemName",
];

/// The elements `t:CalendarItemType` adds to `t:ItemType`, in order.
const CALENDAR_ITEM_OWN: &[&str] = &[
    "UID",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "When",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "InboxReminders",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "Recurrence",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "MeetingTimeZone",
    "StartTimeZone",
    "EndTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
    "EnhancedLocation",
    "StartWallClock",
    "EndWallClock",
    "StartTimeZoneId",
    "EndTimeZoneId",
    "IntendedFreeBusyStatus",
    "JoinOnlineMeetingUrl",
    "OnlineMeetingSettings",
    "IsOrganizer",
    "CalendarActivityData",
    "DoNotForwardMeeting",
];

/// The elements `t:ContactItemType` adds to `t:ItemType`, in order.
const CONTACT_OWN: &[&str] = &[
    "FileAs",
    "FileAsMapping",
    "DisplayName",
    "GivenName",
    "Initials",
    "MiddleName",
    "Nickname",
    "CompleteName",
    "CompanyName",
    "EmailAddresses",
    "AbchEmailAddresses",
    "PhysicalAddresses",
    "PhoneNumbers",
    "AssistantName",
    "Birthday",
    "BusinessHomePage",
    "Children",
    "Companies",
    "ContactSource",
    "Department",
    "Generation",
    "ImAddresses",
    "JobTitle",
    "Manager",
    "Mileage",
    "OfficeLocation",
    "PostalAddressIndex",
    "Profession",
    "SpouseName",
    "Surname",
    "WeddingAnniversary",
    "HasPicture",
    "PhoneticFullName",
    "PhoneticFirstName",
    "PhoneticLastName",
    "Alias",
    "Notes",
    "Photo",
    "UserSMIMECertificate",
    "MSExchangeCertificate",
    "DirectoryId",
    "ManagerMailbox",
    "DirectReports",
    "AccountName",
    "IsAutoUpdateDisabled",
    "IsMessengerEnabled",
    "Comment",
    "ContactShortId",
    "ContactType",
    "Gender",
    "IsHidden",
    "ObjectId",
    "PassportId",
    "IsPrivate",
    "SourceId",
    "TrustLevel",
    "CreatedBy",
    "Urls",
    "Cid",
    "SkypeAuthCertificate",
    "SkypeContext",
    "SkypeId",
    "SkypeRelationship",
    "YomiNickname",
    "XboxLiveTag",
    "InviteFree",
    "HidePresenceAndProfile",
    "IsPendingOutbound",
    "SupportGroupFeeds",
    "UserTileHash",
    "UnifiedInbox",
    "Mris",
    "Wlid",
    "AbchContactId",
    "NotInBirthdayCalendar",
    "ShellContactType",
    "ImMri",
    "PresenceTrustLevel",
    "OtherMri",
    "ProfileLastChanged",
    "MobileIMEnabled",
    "PartnerNetworkProfilePhotoUrl",
    "PartnerNetworkThumbnailPhotoUrl",
    "PersonId",
    "ConversationGuid",
];

/// The elements `t:DistributionListType` adds to `t:ItemType`, in order.
const DISTRIBUTION_LIST_OWN: &[&str] = &["DisplayName", "FileAs", "ContactSource", "Members"];

/// The elements `t:TaskType` adds to `t:ItemType`, in order.
const TASK_OWN: &[&str] = &[
    "ActualWork",
    "AssignedTime",
    "BillingInformation",
    "ChangeCount",
    "Companies",
    "CompleteDate",
    "Contacts",
    "DelegationState",
    "Delegator",
    "DueDate",
    "IsAssignmentEditable",
    "IsComplete",
    "IsRecurring",
    "IsTeamTask",
    "Mileage",
    "Owner",
    "PercentComplete",
    "Recurrence",
    "StartDate",
    "Status",
    "StatusDescription",
    "TotalWork",
];

/// The elements `t:PostItemType` adds to `t:ItemType`, in order.
const POST_ITEM_OWN: &[&str] = &[
    "ConversationIndex",
    "ConversationTopic",
    "From",
    "InternetMessageId",
    "IsRead",
    "PostedTime",
    "References",
    "Sender",
];

/// Child order of `t:PhysicalAddressDictionaryEntryType`.
pub const PHYSICAL_ADDRESS_ENTRY: &[&str] = &["Street", "City", "State", "CountryOrRegion", "PostalCode"];

/// The child order of one item type: the `t:ItemType` elements, then the type's own.
#[derive(Debug, Clone, Copy)]
pub struct FieldOrder {
    own: &'static [&'static str],
}

impl FieldOrder {
    /// Position of a child element (unknown names sort last, at `usize::MAX`).
    pub fn position(&self, name: &str) -> usize {
        ITEM.iter()
            .position(|n| *n == name)
            .or_else(|| self.own.iter().position(|n| *n == name).map(|p| ITEM.len() + p))
            .unwrap_or(usize::MAX)
    }

    /// Whether the type has a child element of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.position(name) != usize::MAX
    }
}

/// Every item type's own elements, for tables of known names.
pub const ALL_OWN: &[&[&str]] =
    &[MESSAGE_OWN, CALENDAR_ITEM_OWN, CONTACT_OWN, DISTRIBUTION_LIST_OWN, TASK_OWN, POST_ITEM_OWN];

/// The field order for an item element name (`Contact`, `CalendarItem`, ...).
pub fn for_item(element: &str) -> FieldOrder {
    let own = match element {
        "Message" => MESSAGE_OWN,
        "CalendarItem" => CALENDAR_ITEM_OWN,
        "Contact" => CONTACT_OWN,
        "DistributionList" => DISTRIBUTION_LIST_OWN,
        "Task" => TASK_OWN,
        "PostItem" => POST_ITEM_OWN,
        _ => &[],
    };
    FieldOrder { own }
}

/// Position of a name in a plain order list (unknown names sort last).
pub fn position(order: &[&str], name: &str) -> usize {
    order.iter().position(|n| *n == name).unwrap_or(usize::MAX)
}
