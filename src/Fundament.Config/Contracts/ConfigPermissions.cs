namespace Fundament.Config;

public static class ConfigPermissions
{
    /// <summary>Every service's entries, history, schemas and resolved configuration.</summary>
    public const string Read = "config.read";

    /// <summary>For service clients: the resolved configuration of the service named like the client, nothing else.</summary>
    public const string ReadOwn = "config.read.own";
    public const string Write = "config.write";
}
