namespace Fundament.Media.Storage;

/// <summary>One object store: <c>Fundament:Media:Storage</c> (hot) or <c>Fundament:Media:ColdStorage</c>.</summary>
public sealed class BlobStoreOptions
{
    /// <summary><c>local</c> (default) or <c>s3</c>.</summary>
    public string Provider { get; set; } = "local";

    /// <summary>Local folder; relative paths are under the data folder. Default <c>media/hot</c> (<c>media/cold</c> for the cold store).</summary>
    public string? Path { get; set; }

    public S3StoreOptions S3 { get; set; } = new();
}

/// <summary>An S3-compatible bucket (AWS S3, MinIO, Ceph, R2, s3rver ...).</summary>
public sealed class S3StoreOptions
{
    /// <summary>Endpoint for non-AWS servers, e.g. <c>http://minio:9000</c>. Empty for AWS.</summary>
    public string? ServiceUrl { get; set; }

    public string Bucket { get; set; } = "";

    /// <summary>Key prefix inside the bucket, e.g. <c>fundament/</c>.</summary>
    public string Prefix { get; set; } = "";

    public string Region { get; set; } = "us-east-1";

    /// <summary>Access key; leave empty to use the SDK's default credential chain (instance role, env).</summary>
    public string? AccessKey { get; set; }

    public string? SecretKey { get; set; }

    /// <summary>Path-style addressing (<c>host/bucket/key</c>), which MinIO and most self-hosted servers need. Default true.</summary>
    public bool ForcePathStyle { get; set; } = true;

    /// <summary>Objects above this are uploaded in parts. Default 16 MiB.</summary>
    public long MultipartThresholdBytes { get; set; } = 16L << 20;
}
