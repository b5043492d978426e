using Fundament.Core.Hosting;

namespace Fundament.UnitTests.Core.Hosting;

public sealed class SettingsProblemsTests
{
    private sealed class Sample
    {
        public int Count { get; set; }

        public TimeSpan Interval { get; set; }

        public Nested Inner { get; set; } = new();
    }

    private sealed class Nested
    {
        public string? Mode { get; set; }
    }

    [Fact]
    public void EachProblem_NamesTheFullKey_FromTheCheckedMember()
    {
        var o = new Sample { Count = 0, Interval = TimeSpan.FromMilliseconds(50), Inner = new Nested { Mode = "loud" } };
        var problems = new SettingsProblems("Fundament:Sample");

        problems.Between(o.Count, 1, 10);
        problems.Between(o.Interval, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1));
        problems.OneOf(o.Inner.Mode, ["quiet", "normal"]);

        Assert.Equal(
        [
            "Fundament:Sample:Count must be between 1 and 10.",
            "Fundament:Sample:Interval must be between 00:00:00.1 and 00:01:00.",
            "Fundament:Sample:Inner:Mode must be quiet or normal.",
        ], problems.Messages);
    }

    [Fact]
    public void ValuesInRange_AddNothing()
    {
        var o = new Sample { Count = 5, Interval = TimeSpan.FromSeconds(1), Inner = new Nested { Mode = "quiet" } };
        var problems = new SettingsProblems("Fundament:Sample");

        problems.Between(o.Count, 1, 10);
        problems.AtLeast(o.Interval, TimeSpan.FromSeconds(1));
        problems.OneOf(o.Inner.Mode, ["quiet", "normal"]);
        problems.Required(o.Inner.Mode);

        Assert.Equal(0, problems.Count);
    }

    [Fact]
    public void AnExpressionThatIsNotAMember_IsAProgrammingError()
    {
        var problems = new SettingsProblems("Fundament:Sample");

        Assert.Throws<ArgumentException>(() => problems.Between(3 + 4, 1, 2));
    }

    [Theory]
    [InlineData(100, "00:00:00.1")]
    [InlineData(60_000, "00:01:00")]
    [InlineData(86_400_000, "1.00:00:00")]
    public void Durations_AreWrittenAsSettingsAreWritten(long milliseconds, string expected)
    {
        var o = new Sample { Interval = TimeSpan.Zero };
        var problems = new SettingsProblems("S");

        problems.AtLeast(o.Interval, TimeSpan.FromMilliseconds(milliseconds));

        Assert.Equal($"S:Interval must be at least {expected}.", Assert.Single(problems.Messages));
    }
}
