using System.Text.Json.Nodes;
using Fundament.Media;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NetVips;

namespace Fundament.Analysis.Stages;

/// <summary>
/// Stage <c>embedding</c>: a 512-number description of the picture from ResNet18 (the featurizer ML.NET
/// ships as ONNX, run on the CPU through ONNX Runtime), stored unit length so similar pictures have
/// a cosine similarity near 1. <c>GET /api/v1/media/{id}/similar</c> ranks by it.
/// </summary>
internal sealed class EmbeddingStage(AnalysisStore store, AnalysisService analysis, MediaStore media, AnalysisImages images, ImageEmbedder embedder, ILogger<EmbeddingStage> logger)
    : StageJob(store, analysis, media, logger)
{
    public override string Stage => AnalysisStages.Embedding;

    protected override async Task<StageOutcome> RunAsync(AssetRow asset, CancellationToken cancellationToken)
    {
        if (!Analysis.Options.Embedding.Enabled)
        {
            throw new StageSkippedException("embeddings are turned off (Fundament:Analysis:Embedding:Enabled)");
        }
        if (!embedder.Available)
        {
            throw new StageSkippedException($"the model is not installed next to the binary ({ImageEmbedder.ModelFile})");
        }
        var picture = await images.LoadAsync(asset, 512, ".png", cancellationToken);
        float[] vector;
        try
        {
            vector = await Task.Run(() => embedder.Embed(picture), cancellationToken);
        }
        catch (Exception ex) when (ex is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            // The build copies ONNX Runtime's native library for the platform it ran on only (Fundament.Analysis.csproj).
            throw new StageSkippedException("ONNX Runtime's native library is not available on this platform: " + ex.GetBaseException().Message);
        }
        await Store.SaveEmbeddingAsync(asset.Id, ImageEmbedder.Model, vector, cancellationToken);
        return new StageOutcome(new JsonObject { ["model"] = ImageEmbedder.Model, ["dimensions"] = vector.Length }, ImageEmbedder.Model);
    }
}

/// <summary>
/// ResNet18 through ONNX Runtime: the picture scaled to 224×224 (centre crop), as R, G and B planes of
/// 0-255, through ML.NET's own preprocessing graph (ImageNet normalisation) and the network, whose
/// pooling layer gives 512 numbers. The sessions load once, on first use, with one thread each:
/// a worker gets its parallelism from running several jobs.
/// </summary>
internal sealed class ImageEmbedder : IDisposable
{
    public const string Model = "resnet18-imagenet";
    public const string ModelFile = "models/resnet18.onnx";
    private const string PreprocessFile = "models/resnet18-preprocess.onnx";
    private const int Side = 224;

    private readonly Lazy<(InferenceSession Prepare, InferenceSession Network)> _sessions;

    public ImageEmbedder()
    {
        _sessions = new(() =>
        {
            using var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
            var prepare = new InferenceSession(Path.Combine(AppContext.BaseDirectory, PreprocessFile), options);
            try
            {
                return (prepare, new InferenceSession(Path.Combine(AppContext.BaseDirectory, ModelFile), options));
            }
            catch
            {
                prepare.Dispose();
                throw;
            }
        }, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public bool Available => File.Exists(Path.Combine(AppContext.BaseDirectory, ModelFile)) && File.Exists(Path.Combine(AppContext.BaseDirectory, PreprocessFile));

    public float[] Embed(byte[] picture)
    {
        var (prepare, network) = _sessions.Value;
        using var scaled = Image.ThumbnailBuffer(picture, Side, height: Side, size: Enums.Size.Both, crop: Enums.Interesting.Centre);
        using var first = scaled.ExtractBand(0, n: Math.Min(3, scaled.Bands));
        using var rgb = first.Bands == 3 ? first.Copy() : first.ExtractBand(0).Bandjoin(first.ExtractBand(0), first.ExtractBand(0));
        using var bytes = rgb.Format == Enums.BandFormat.Uchar ? rgb.Copy() : rgb.Cast(Enums.BandFormat.Uchar);
        var pixels = bytes.WriteToMemory<byte>();
        var input = new DenseTensor<float>([1, 3, Side, Side]);
        for (var y = 0; y < Side; y++)
        {
            for (var x = 0; x < Side; x++)
            {
                var at = (y * Side + x) * 3;
                input[0, 0, y, x] = pixels[at];
                input[0, 1, y, x] = pixels[at + 1];
                input[0, 2, y, x] = pixels[at + 2];
            }
        }
        using var prepared = prepare.Run([NamedOnnxValue.CreateFromTensor(prepare.InputMetadata.Keys.First(), input)]);
        var normalised = prepared.First().AsTensor<float>();
        using var features = network.Run([NamedOnnxValue.CreateFromTensor(network.InputMetadata.Keys.First(), normalised)]);
        var vector = features.First().AsEnumerable<float>().ToArray();
        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        if (norm > 0)
        {
            for (var i = 0; i < vector.Length; i++)
            {
                vector[i] /= norm;
            }
        }
        return vector;
    }

    public void Dispose()
    {
        if (_sessions.IsValueCreated)
        {
            _sessions.Value.Prepare.Dispose();
            _sessions.Value.Network.Dispose();
        }
    }
}
