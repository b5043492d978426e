using System.Text.Json;
using System.Text.Json.Nodes;

namespace Fundament.Events.Upcasting;

/// <summary>Why an event's data could not be upcast: the step (by the version it upgrades) and operation that failed.</summary>
internal sealed class UpcastFailedException(int fromVersion, int operation, string message)
    : Exception($"step fromVersion {fromVersion}, operations[{operation}]: {message}")
{
    public int FromVersion { get; } = fromVersion;

    public int Operation { get; } = operation;
}

/// <summary>
/// The declarative upcasts of one event type: step <c>i</c> (fromVersion <c>i + 1</c>) turns data
/// of schema version <c>i + 1</c> into version <c>i + 2</c>, so an event written at version v is
/// brought to <see cref="CurrentVersion"/> by running steps v..n in order. Operations address
/// properties by dotted paths (<c>customer.address.city</c>) from the root object of the data.
/// </summary>
internal sealed class UpcastChain
{
    public const string Rename = "rename";
    public const string Move = "move";
    public const string Default = "default";
    public const string Drop = "drop";
    public const int MaxPathDepth = 16;

    private readonly IReadOnlyList<UpcastStep> _steps;

    public UpcastChain(IReadOnlyList<UpcastStep> steps) => _steps = steps;

    /// <summary>The schema version every event of the type is read at: one past the last step.</summary>
    public int CurrentVersion => _steps.Count + 1;

    /// <summary>
    /// <paramref name="data"/> (schema version <paramref name="schemaVersion"/>) upcast to
    /// <see cref="CurrentVersion"/>; unchanged when it is at or beyond it (written by a newer writer).
    /// Throws <see cref="UpcastFailedException"/> when an operation cannot apply.
    /// </summary>
    public JsonNode? Apply(JsonNode? data, int schemaVersion)
    {
        if (schemaVersion >= CurrentVersion)
        {
            return data;
        }
        for (var i = Math.Max(schemaVersion, 1) - 1; i < _steps.Count; i++)
        {
            var step = _steps[i];
            if (data is not JsonObject root)
            {
                throw new UpcastFailedException(step.FromVersion, 0, $"the data is {Describe(data)}, not an object.");
            }
            var operations = step.Operations ?? [];
            for (var o = 0; o < operations.Count; o++)
            {
                if (ApplyOne(root, operations[o]) is { } problem)
                {
                    throw new UpcastFailedException(step.FromVersion, o, problem);
                }
            }
        }
        return data;
    }

    /// <summary>Runs one operation on <paramref name="root"/>; the problem when it cannot.</summary>
    private static string? ApplyOne(JsonObject root, UpcastOperation operation)
    {
        var path = Split(operation.Path!);
        switch (operation.Op)
        {
            case Rename or Move:
            {
                var parent = Walk(root, path, create: false, out var problem);
                if (problem is not null)
                {
                    return operation.Optional == true ? null : problem;
                }
                if (parent is null || !parent.ContainsKey(path[^1]))
                {
                    return operation.Optional == true ? null : $"'{operation.Path}' is missing (set optional to skip events without it).";
                }
                var target = operation.Op == Rename ? [.. path[..^1], operation.To!] : Split(operation.To!);
                var destination = Walk(root, target, create: true, out problem)!;
                if (problem is not null)
                {
                    return problem;
                }
                if (destination.ContainsKey(target[^1]))
                {
                    return $"'{string.Join('.', target)}' exists already; the {operation.Op} would overwrite it.";
                }
                var value = parent[path[^1]];
                parent.Remove(path[^1]);
                destination[target[^1]] = value;
                return null;
            }
            case Default:
            {
                var parent = Walk(root, path, create: true, out var problem)!;
                if (problem is null && !parent.ContainsKey(path[^1]))
                {
                    parent[path[^1]] = operation.Value is { ValueKind: not JsonValueKind.Undefined } value ? JsonNode.Parse(value.GetRawText()) : null;
                }
                return problem;
            }
            case Drop:
            {
                // Nothing to drop where the parent is missing or not an object.
                Walk(root, path, create: false, out _)?.Remove(path[^1]);
                return null;
            }
            default:
                return $"unknown op '{operation.Op}'.";
        }
    }

    /// <summary>The object holding the last segment of <paramref name="path"/>; null when a parent is missing and not created.</summary>
    private static JsonObject? Walk(JsonObject root, string[] path, bool create, out string? problem)
    {
        problem = null;
        var current = root;
        for (var i = 0; i < path.Length - 1; i++)
        {
            if (!current.TryGetPropertyValue(path[i], out var node))
            {
                if (!create)
                {
                    return null;
                }
                var created = new JsonObject();
                current[path[i]] = created;
                current = created;
                continue;
            }
            if (node is not JsonObject next)
            {
                problem = $"'{string.Join('.', path[..(i + 1)])}' is {Describe(node)}, not an object.";
                return null;
            }
            current = next;
        }
        return current;
    }

    private static string[] Split(string path) => path.Split('.');

    private static string Describe(JsonNode? node) => node is null ? "null" : node.GetValueKind() switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "not an object",
    };

    /// <summary>Checks steps as a client sent them: consecutive fromVersions from 1, known ops with what each needs.</summary>
    public static void Validate(IReadOnlyList<UpcastStep>? steps, int maxSteps, ValidationErrors errors)
    {
        if (steps is not { Count: > 0 } || steps.Count > maxSteps)
        {
            errors.Add("steps", $"steps lists 1-{maxSteps} steps, one per schema version from 1.");
            return;
        }
        for (var i = 0; i < steps.Count; i++)
        {
            var at = $"steps[{i}]";
            if (steps[i] is not { } step)
            {
                errors.Add(at, "a step is an object with fromVersion and operations.");
                continue;
            }
            if (step.FromVersion != i + 1)
            {
                errors.Add(at + ".fromVersion", $"fromVersion must be {i + 1}: steps upgrade schema version 1 to 2, 2 to 3, and so on, in order.");
            }
            if (step.Operations is not { Count: > 0 and <= 100 } operations)
            {
                errors.Add(at + ".operations", "operations lists 1-100 operations.");
                continue;
            }
            for (var o = 0; o < operations.Count; o++)
            {
                ValidateOperation($"{at}.operations[{o}]", operations[o], errors);
            }
        }
    }

    private static void ValidateOperation(string at, UpcastOperation? operation, ValidationErrors errors)
    {
        if (operation is null || operation.Op is not (Rename or Move or Default or Drop))
        {
            errors.Add(at + ".op", "op is rename, move, default or drop.");
            return;
        }
        if (!IsPath(operation.Path))
        {
            errors.Add(at + ".path", $"path is 1-{MaxPathDepth} property names joined by '.', each 1-128 characters.");
        }
        switch (operation.Op)
        {
            case Rename when operation.To is not { Length: > 0 and <= 128 } name || name.Contains('.'):
                errors.Add(at + ".to", "a rename's to is the new property name (1-128 characters, no '.'); use move to change the parent.");
                break;
            case Move when !IsPath(operation.To):
                errors.Add(at + ".to", $"a move's to is a path: 1-{MaxPathDepth} property names joined by '.'.");
                break;
        }
        if (operation.Op == Move && IsPath(operation.Path) && IsPath(operation.To)
            && (operation.To == operation.Path || operation.To!.StartsWith(operation.Path + ".", StringComparison.Ordinal)))
        {
            errors.Add(at + ".to", "a move's to must not be the path itself or inside it.");
        }
        if (operation.Op == Rename && IsPath(operation.Path) && operation.To == operation.Path!.Split('.')[^1])
        {
            errors.Add(at + ".to", "a rename's to must differ from the current name.");
        }
    }

    private static bool IsPath(string? path) =>
        path is { Length: > 0 } && path.Split('.') is { Length: <= MaxPathDepth } segments && segments.All(s => s.Length is > 0 and <= 128);
}
