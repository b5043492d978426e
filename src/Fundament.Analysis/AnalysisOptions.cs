namespace Fundament.Analysis;

/// <summary>
/// Settings for the analysis pipeline, section <c>Fundament:Analysis</c>. OCR and the embedding run
/// on the CPU of a media worker with nothing to configure; the vision and language stages need an
/// OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama) and say "skipped" until one is set.
/// </summary>
public sealed class AnalysisOptions
{
    public const string SectionName = "Fundament:Analysis";

    /// <summary>Analyse assets when they become ready. Default true.</summary>
    public bool Enabled { get; set; } = true;

    public OcrOptions Ocr { get; set; } = new();

    /// <summary>The vision model that writes a caption and tags (LLaVA and the like).</summary>
    public ModelEndpointOptions Vision { get; set; } = new() { MaxTokens = 400 };

    /// <summary>The language model that fuses caption, OCR text and metadata into one description (Llama 3.1 and the like).</summary>
    public ModelEndpointOptions Fusion { get; set; } = new() { MaxTokens = 800 };

    public EmbeddingOptions Embedding { get; set; } = new();

    /// <summary>Attempts of each stage's job before the stage is <c>failed</c> (endpoint down, timeouts). Default 5.</summary>
    public int MaxAttempts { get; set; } = 5;
}

public sealed class OcrOptions
{
    /// <summary>Run OCR (the <c>tesseract</c> command). Default true; skipped with a reason when tesseract is not installed.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Tesseract languages, joined with '+', e.g. <c>eng+deu</c>. Default <c>eng</c>.</summary>
    public string Languages { get; set; } = "eng";

    /// <summary>The tesseract executable. Default <c>tesseract</c> on the PATH.</summary>
    public string Tesseract { get; set; } = "tesseract";

    /// <summary>Wall-clock limit of one OCR run. Default 2 minutes.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Words recognised with less confidence (0-100) are left out of the text. Default 30.</summary>
    public int MinWordConfidence { get; set; } = 30;
}

public sealed class ModelEndpointOptions
{
    /// <summary>Base URL of an OpenAI-compatible API, e.g. <c>http://gpu-1:8000/v1</c>. Empty: the stage is skipped.</summary>
    public string? Endpoint { get; set; }

    /// <summary>The model name the endpoint serves, e.g. <c>llava-hf/llava-1.5-7b-hf</c>.</summary>
    public string? Model { get; set; }

    /// <summary>A vault path whose current value is the API key (sent as a bearer token). Empty: no key.</summary>
    public string? ApiKeySecret { get; set; }

    /// <summary>Limit of one request. Default 2 minutes.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Longest side of the image sent to a vision model, in pixels. Default 1024.</summary>
    public int MaxImageSide { get; set; } = 1024;

    /// <summary>Tokens the model may answer with.</summary>
    public int MaxTokens { get; set; } = 800;

    /// <summary>Answers that are not valid JSON of the expected shape are asked again this often, with the error, before the stage fails. Default 2.</summary>
    public int InvalidAnswerRetries { get; set; } = 2;

    public bool Configured => !string.IsNullOrWhiteSpace(Endpoint) && !string.IsNullOrWhiteSpace(Model);
}

public sealed class EmbeddingOptions
{
    /// <summary>Compute image embeddings (ResNet18 through ONNX Runtime, on the CPU) for similar-image search. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Cosine similarity from which a similar image counts as a near-duplicate. Default 0.92.</summary>
    public double NearDuplicate { get; set; } = 0.92;
}

internal sealed class AnalysisOptionsValidator : SettingsValidator<AnalysisOptions>
{
    protected override string Section => AnalysisOptions.SectionName;

    protected override void Check(AnalysisOptions o, SettingsProblems problems)
    {
        problems.Between(o.MaxAttempts, 1, 100);
        problems.Require(o.Ocr.Languages.Length > 0 && o.Ocr.Languages.All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '_'), o.Ocr.Languages, "must be tesseract language codes joined with '+', e.g. 'eng+deu'.");
        problems.Positive(o.Ocr.Timeout);
        problems.Between(o.Ocr.MinWordConfidence, 0, 100);
        CheckEndpoint(problems, o.Vision, "o.Vision");
        CheckEndpoint(problems, o.Fusion, "o.Fusion");
        problems.Require(o.Embedding.NearDuplicate is > 0 and <= 1, o.Embedding.NearDuplicate, "must be in (0, 1].");
    }

    private static void CheckEndpoint(SettingsProblems problems, ModelEndpointOptions e, string name)
    {
        if (!string.IsNullOrWhiteSpace(e.Endpoint))
        {
            problems.Require(Uri.TryCreate(e.Endpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https", e.Endpoint, "must be an http(s) URL.", name + ".Endpoint");
            problems.Require(!string.IsNullOrWhiteSpace(e.Model), e.Model, "is required when the Endpoint is set.", name + ".Model");
        }
        problems.Positive(e.Timeout, name + ".Timeout");
        problems.Between(e.MaxImageSide, 64, 4096, name + ".MaxImageSide");
        problems.Between(e.MaxTokens, 16, 32_000, name + ".MaxTokens");
        problems.Between(e.InvalidAnswerRetries, 0, 10, name + ".InvalidAnswerRetries");
    }
}
