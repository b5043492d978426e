namespace Fundament.Media;

public static class MediaPermissions
{
    /// <summary>Upload and manage one's own media and webhooks (built-in role <c>user</c>).</summary>
    public const string Own = "media.own";

    /// <summary>Read media shared with one (built-in role <c>guest</c>).</summary>
    public const string Shared = "media.shared";

    /// <summary>See and manage every asset; manage lifecycle policies.</summary>
    public const string Admin = "media.admin";
}
