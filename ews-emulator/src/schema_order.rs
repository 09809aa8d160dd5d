//! Element order of the EWS item types, as the `xs:sequence`s of `types.xsd` define it.
//!
//! EWS rejects (and the schema check flags) fields out of order, so every item the emulator
//! writes is sorted with these lists. They list element names only, extracted from the schema.

/// Child order of `t:ItemType`.
pub const ITEM: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification",
];

/// Child order of `t:MessageType`.
pub const MESSAGE: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification",
    "Sender", "ToRecipients", "CcRecipients", "BccRecipients", "IsReadReceiptRequested",
    "IsDeliveryReceiptRequested", "ConversationIndex", "ConversationTopic", "From",
    "InternetMessageId", "IsRead", "IsResponseRequested", "References", "ReplyTo", "ReceivedBy",
    "ReceivedRepresenting", "ApprovalRequestData", "VotingInformation", "ReminderMessageData",
    "MessageSafety", "SenderSMTPAddress", "MailboxGuids", "MailboxGuid",
    "PublishedCalendarItemIcs", "PublishedCalendarItemName",
];

/// Child order of `t:CalendarItemType`.
pub const CALENDAR_ITEM: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification", "UID",
    "RecurrenceId", "DateTimeStamp", "Start", "End", "OriginalStart", "IsAllDayEvent",
    "LegacyFreeBusyStatus", "Location", "When", "IsMeeting", "IsCancelled", "IsRecurring",
    "MeetingRequestWasSent", "IsResponseRequested", "CalendarItemType", "MyResponseType",
    "Organizer", "RequiredAttendees", "OptionalAttendees", "Resources", "InboxReminders",
    "ConflictingMeetingCount", "AdjacentMeetingCount", "ConflictingMeetings", "AdjacentMeetings",
    "Duration", "TimeZone", "AppointmentReplyTime", "AppointmentSequenceNumber",
    "AppointmentState", "Recurrence", "FirstOccurrence", "LastOccurrence", "ModifiedOccurrences",
    "DeletedOccurrences", "MeetingTimeZone", "StartTimeZone", "EndTimeZone", "ConferenceType",
    "AllowNewTimeProposal", "IsOnlineMeeting", "MeetingWorkspaceUrl", "NetShowUrl",
    "EnhancedLocation", "StartWallClock", "EndWallClock", "StartTimeZoneId", "EndTimeZoneId",
    "IntendedFreeBusyStatus", "JoinOnlineMeetingUrl", "OnlineMeetingSettings", "IsOrganizer",
    "CalendarActivityData", "DoNotForwardMeeting",
];

/// Child order of `t:ContactItemType`.
pub const CONTACT: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification",
    "FileAs", "FileAsMapping", "DisplayName", "GivenName", "Initials", "MiddleName", "Nickname",
    "CompleteName", "CompanyName", "EmailAddresses", "AbchEmailAddresses", "PhysicalAddresses",
    "PhoneNumbers", "AssistantName", "Birthday", "BusinessHomePage", "Children", "Companies",
    "ContactSource", "Department", "Generation", "ImAddresses", "JobTitle", "Manager", "Mileage",
    "OfficeLocation", "PostalAddressIndex", "Profession", "SpouseName", "Surname",
    "WeddingAnniversary", "HasPicture", "PhoneticFullName", "PhoneticFirstName",
    "PhoneticLastName", "Alias", "Notes", "Photo", "UserSMIMECertificate", "MSExchangeCertificate",
    "DirectoryId", "ManagerMailbox", "DirectReports", "AccountName", "IsAutoUpdateDisabled",
    "IsMessengerEnabled", "Comment", "ContactShortId", "ContactType", "Gender", "IsHidden",
    "ObjectId", "PassportId", "IsPrivate", "SourceId", "TrustLevel", "CreatedBy", "Urls", "Cid",
    "SkypeAuthCertificate", "SkypeContext", "SkypeId", "SkypeRelationship", "YomiNickname",
    "XboxLiveTag", "InviteFree", "HidePresenceAndProfile", "IsPendingOutbound",
    "SupportGroupFeeds", "UserTileHash", "UnifiedInbox", "Mris", "Wlid", "AbchContactId",
    "NotInBirthdayCalendar", "ShellContactType", "ImMri", "PresenceTrustLevel", "OtherMri",
    "ProfileLastChanged", "MobileIMEnabled", "PartnerNetworkProfilePhotoUrl",
    "PartnerNetworkThumbnailPhotoUrl", "PersonId", "ConversationGuid",
];

/// Child order of `t:DistributionListType`.
pub const DISTRIBUTION_LIST: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification",
    "DisplayName", "FileAs", "ContactSource", "Members",
];

/// Child order of `t:TaskType`.
pub const TASK: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification",
    "ActualWork", "AssignedTime", "BillingInformation", "ChangeCount", "Companies", "CompleteDate",
    "Contacts", "DelegationState", "Delegator", "DueDate", "IsAssignmentEditable", "IsComplete",
    "IsRecurring", "IsTeamTask", "Mileage", "Owner", "PercentComplete", "Recurrence", "StartDate",
    "Status", "StatusDescription", "TotalWork",
];

/// Child order of `t:PostItemType`.
pub const POST_ITEM: &[&str] = &[
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey",
    "SortKey", "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx",
    "AppliedHashtags", "AppliedHashtagsPreview", "Likes", "LikesPreview",
    "PendingSocialActivityTagIds", "AtAllMention", "CanDelete", "InferenceClassification",
    "ConversationIndex", "ConversationTopic", "From", "InternetMessageId", "IsRead", "PostedTime",
    "References", "Sender",
];

/// Child order of `t:PhysicalAddressDictionaryEntryType`.
pub const PHYSICAL_ADDRESS_ENTRY: &[&str] = &[
    "Street", "City", "State", "CountryOrRegion", "PostalCode",
];

/// The field order for an item element name (`Contact`, `CalendarItem`, ...).
pub fn for_item(element: &str) -> &'static [&'static str] {
    match element {
        "Message" => MESSAGE,
        "CalendarItem" => CALENDAR_ITEM,
        "Contact" => CONTACT,
        "DistributionList" => DISTRIBUTION_LIST,
        "Task" => TASK,
        "PostItem" => POST_ITEM,
        _ => ITEM,
    }
}

/// Position of a field in an order list (unknown names sort last).
pub fn position(order: &[&str], name: &str) -> usize {
    order.iter().position(|n| *n == name).unwrap_or(usize::MAX)
}
