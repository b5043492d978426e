namespace Fundament.Events;

/// <summary>Permissions of the events module.</summary>
public static class EventsPermissions
{
    /// <summary>Every stream, and the stream grants that give others a prefix.</summary>
    public const string Admin = "events.admin";
}
