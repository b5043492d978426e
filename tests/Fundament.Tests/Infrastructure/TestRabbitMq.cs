using System.Diagnostics;

namespace Fundament.Tests.Infrastructure;

/// <summary>
/// The RabbitMQ the backend suites run against: <c>FUNDAMENT_TEST_RABBITMQ</c> (an amqp:// URI), and
/// <c>FUNDAMENT_TEST_RABBITMQCTL</c>, the command line of <c>rabbitmqctl</c> for that node (for the
/// restart tests). CI starts a private server on loopback and sets both.
/// </summary>
public static class TestRabbitMq
{
    public const string Variable = "FUNDAMENT_TEST_RABBITMQ";

    public const string CtlVariable = "FUNDAMENT_TEST_RABBITMQCTL";

    public static string? Uri => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } v ? v : null;

    public static bool Available => Uri is not null;

    /// <summary>Skips the test when no RabbitMQ is configured (CI always sets it).</summary>
    public static string Require()
    {
        Assert.SkipUnless(Available, $"{Variable} is not set");
        return Uri!;
    }

    /// <summary>Settings selecting the RabbitMQ transport, under a name prefix no other test uses (its own exchanges and queues).</summary>
    public static KeyValuePair<string, string>[] Settings(string? prefix = null) =>
    [
        new("Fundament:Messaging:RabbitMq:Uri", Require()),
        new("Fundament:Messaging:RabbitMq:Prefix", prefix ?? UniquePrefix()),
    ];

    public static string UniquePrefix() => $"ft{Guid.NewGuid():N}"[..14];

    /// <summary>Runs <c>rabbitmqctl <paramref name="arguments"/></c> on the test node and waits for it.</summary>
    public static async Task CtlAsync(string arguments, CancellationToken cancellationToken)
    {
        var ctl = Environment.GetEnvironmentVariable(CtlVariable);
        Assert.SkipUnless(ctl is { Length: > 0 }, $"{CtlVariable} is not set");
        using var process = Process.Start(new ProcessStartInfo("bash", ["-c", $"{ctl} {arguments}"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        Assert.True(process.ExitCode == 0, $"rabbitmqctl {arguments} failed: {await output}{await errors}");
    }
}

/// <summary>The server on a real PostgreSQL (a database of its own) with the RabbitMQ transport (names of its own).</summary>
public sealed class RabbitMqFundamentFactory : FundamentFactory
{
    private readonly PostgresFundamentFactory _postgres = new();

    public override async ValueTask InitializeAsync() => await _postgres.InitializeAsync();

    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
        TestRabbitMq.Available ? [.. _postgres.SettingsForReplica(), .. TestRabbitMq.Settings()] : [];

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _postgres.DisposeAsync();
    }
}
