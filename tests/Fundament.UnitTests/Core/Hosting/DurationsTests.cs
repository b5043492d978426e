using Fundament.Core.Hosting;

namespace Fundament.UnitTests.Core.Hosting;

public sealed class DurationsTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("10s", 10_000)]
    [InlineData("1m", 60_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("30d", 2_592_000_000)]
    [InlineData("00:00:10", 10_000)]
    public void Parses_WhatPeopleWrite(string text, long milliseconds)
    {
        Assert.True(Durations.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("ten seconds")]
    [InlineData("-5s")]
    [InlineData("5x")]
    public void Refuses_TheRest(string? text) => Assert.False(Durations.TryParse(text, out _));

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(1_500, "1s500ms")]
    [InlineData(93_784_000, "1d2h3m4s")]
    public void Formats_Compactly_AndRoundTrips(long milliseconds, string expected)
    {
        var value = TimeSpan.FromMilliseconds(milliseconds);

        Assert.Equal(expected, Durations.Format(value));
        Assert.True(Durations.TryParse(Durations.Format(value), out var back));
        Assert.Equal(value, back);
    }
}
