namespace Fundament.Messaging;

/// <summary>Permissions of the messaging module.</summary>
public static class MessagingPermissions
{
    /// <summary>Every topic and every consumer group, the dead letters of all, and the topic grants that give others a prefix.</summary>
    public const string Admin = "messaging.admin";
}
