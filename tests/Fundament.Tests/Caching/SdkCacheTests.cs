using System.Diagnostics;
using Fundament.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ZiggyCreatures.Caching.Fusion;

namespace Fundament.Tests.Caching;

/// <summary>
/// The SDK's <c>AddFundamentCache()</c> in two service replicas on one real Redis: a value set on one
/// is read from the second level on the other, and removing a tag on one evicts it from the other's
/// memory within a second.
/// </summary>
public sealed class SdkCacheTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static IHost Replica(string redis, string prefix)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:redis"] = redis });
        builder.AddFundamentCache(o => o.KeyPrefix = prefix);
        return builder.Build();
    }

    [Fact]
    public async Task TwoReplicas_ShareTheSecondLevel_AndATagRemovedOnOne_IsGoneOnTheOtherWithinOneSecond()
    {
        var redis = TestRedis.Require();
        var prefix = TestRedis.UniquePrefix();
        using var a = Replica(redis, prefix);
        using var b = Replica(redis, prefix);
        var cacheA = a.Services.GetRequiredService<IFusionCache>();
        var cacheB = b.Services.GetRequiredService<IFusionCache>();

        await cacheA.SetAsync("price:42", 10, tags: ["prices"], token: _ct);
        // B has no value in memory: it reads A's from Redis, then holds it in memory.
        var calls = 0;
        Assert.Equal(10, await cacheB.GetOrSetAsync("price:42", _ => { calls++; return Task.FromResult(-1); }, tags: ["prices"], token: _ct));
        Assert.Equal(0, calls);

        await cacheA.RemoveByTagAsync("prices", token: _ct);
        var clock = Stopwatch.StartNew();
        int value;
        do
        {
            value = await cacheB.GetOrSetAsync("price:42", _ => Task.FromResult(11), tags: ["prices"], token: _ct);
            if (value == 10)
            {
                await Task.Delay(50, _ct);
            }
        }
        while (value == 10 && clock.Elapsed < TimeSpan.FromSeconds(1));
        Assert.Equal(11, value);
    }

    [Fact]
    public void WithoutRedis_TheCacheIsMemoryOnly()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.AddFundamentCache(o => o.RedisConfigurationKey = null);
        using var host = builder.Build();
        var cache = host.Services.GetRequiredService<IFusionCache>();
        Assert.False(cache.HasDistributedCache);
        Assert.False(cache.HasBackplane);
    }
}
