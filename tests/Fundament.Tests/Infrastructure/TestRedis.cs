namespace Fundament.Tests.Infrastructure;

/// <summary>The Redis the backend suites run against: <c>FUNDAMENT_TEST_REDIS</c> (a StackExchange.Redis configuration string).</summary>
public static class TestRedis
{
    public const string Variable = "FUNDAMENT_TEST_REDIS";

    public static string? Configuration => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } v ? v : null;

    /// <summary>Skips the test when no Redis is configured (CI always sets it, and fails on skips).</summary>
    public static string Require()
    {
        Assert.SkipUnless(Configuration is not null, $"{Variable} is not set");
        return Configuration!;
    }

    /// <summary>A key prefix no other test uses.</summary>
    public static string UniquePrefix() => $"fundament-test:{Guid.NewGuid():N}:";
}
