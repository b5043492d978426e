using Fundament.Media.Storage;

namespace Fundament.Tests.Infrastructure;

/// <summary>
/// The S3-compatible server the backend suites run against: <c>FUNDAMENT_TEST_S3</c> is its URL
/// (CI starts s3rver from npm; MinIO works too, with <c>FUNDAMENT_TEST_S3_ACCESS_KEY</c>/<c>_SECRET_KEY</c>).
/// </summary>
public static class TestS3
{
    public const string Variable = "FUNDAMENT_TEST_S3";

    public static string? Url => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } v ? v : null;

    public static string AccessKey => Environment.GetEnvironmentVariable("FUNDAMENT_TEST_S3_ACCESS_KEY") ?? "S3RVER";

    public static string SecretKey => Environment.GetEnvironmentVariable("FUNDAMENT_TEST_S3_SECRET_KEY") ?? "S3RVER";

    public static string Require()
    {
        Assert.SkipUnless(Url is not null, $"{Variable} is not set");
        return Url!;
    }

    /// <summary>A fresh bucket for one test class.</summary>
    public static async Task<S3StoreOptions> NewBucketAsync(long multipartThreshold = 16L << 20)
    {
        var options = new S3StoreOptions
        {
            ServiceUrl = Require(),
            Bucket = "fundament-test-" + Guid.NewGuid().ToString("N")[..12],
            AccessKey = AccessKey,
            SecretKey = SecretKey,
            MultipartThresholdBytes = multipartThreshold,
        };
        using var store = new S3BlobStore(options);
        await store.EnsureBucketAsync(TestContext.Current.CancellationToken);
        return options;
    }

    public static IEnumerable<KeyValuePair<string, string>> Settings(string prefix, S3StoreOptions options) =>
    [
        new($"{prefix}:Provider", "s3"),
        new($"{prefix}:S3:ServiceUrl", options.ServiceUrl!),
        new($"{prefix}:S3:Bucket", options.Bucket),
        new($"{prefix}:S3:AccessKey", options.AccessKey!),
        new($"{prefix}:S3:SecretKey", options.SecretKey!),
    ];
}
