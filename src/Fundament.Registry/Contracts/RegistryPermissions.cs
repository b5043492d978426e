namespace Fundament.Registry;

public static class RegistryPermissions
{
    /// <summary>Discovery: list services and instances.</summary>
    public const string Read = "registry.read";

    /// <summary>
    /// Register the service named like the client. A permission (handed out through roles, which
    /// only their holders can grant), so naming a client after a service is not enough to take its
    /// traffic.
    /// </summary>
    public const string RegisterOwn = "registry.register.own";

    /// <summary>Register any service, deregister any instance, manage grants and route claims.</summary>
    public const string Write = "registry.write";

    /// <summary>Declare routes with <c>forwardAuthorization: passthrough</c> (callers' tokens reach the service). Not held by <see cref="Write"/>.</summary>
    public const string Passthrough = "registry.passthrough";
}
