namespace Fundament.Core.Modules;

/// <summary>Permissions a module contributes. Every module is one; others may be registered in DI.</summary>
public interface IPermissionSource
{
    IReadOnlyList<PermissionDefinition> Permissions { get; }
}

/// <summary>A permission a role can grant, and the built-in roles that hold it from the start.</summary>
/// <param name="Name">e.g. <c>media.own</c>; an endpoint's authorization policy is named after it.</param>
/// <param name="Description">One sentence for people choosing what to grant.</param>
/// <param name="BuiltInRoles">Built-in roles (<c>user</c>, <c>guest</c>, <c>service</c>) that grant it; <c>admin</c> grants everything anyway.</param>
public sealed record PermissionDefinition(string Name, string Description, params string[] BuiltInRoles);
