using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;
using Fundament.Tests.Media;
using Microsoft.Extensions.DependencyInjection;

namespace Fundament.Tests.Analysis;

/// <summary>
/// The analysis pipeline through the API, with real tesseract and real ResNet18 embeddings, and the
/// vision and language stages against a local fake OpenAI-compatible server in the shapes of vLLM,
/// llama.cpp and Ollama.
/// </summary>
public class AnalysisPipelineTests : MediaTestBase
{
    private FakeOpenAiServer _models = null!;

    public const string Caption = """{"caption": "A printed invoice lying on a desk.", "tags": ["Invoice", "paper", "desk"]}""";

    public const string Fused = """
        {"title": "Invoice 4711", "description": "A printed invoice from Fundament lying on a desk.", "tags": ["invoice", "finance", "zebrafish"],
         "objects": ["paper", "desk"], "text": "INVOICE 4711 FUNDAMENT", "language": "en"}
        """;

    public override async ValueTask InitializeAsync()
    {
        _models = await FakeOpenAiServer.StartAsync();
        _models.DefaultAnswer = request => FakeOpenAiServer.Prompt(request).Contains("catalogue", StringComparison.Ordinal) ? Fused : Caption;
        await base.InitializeAsync();
        // The vision endpoint's key, read from the vault by the path in the settings.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PutAsJsonAsync("/api/v1/secrets/platform/vision-key", new { value = "vk-4f1c9a" }, Ct)).StatusCode);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _models.DisposeAsync();
    }

    protected override IEnumerable<KeyValuePair<string, string>> Settings() =>
    [
        new("Fundament:Analysis:Vision:Endpoint", _models.Url),
        new("Fundament:Analysis:Vision:Model", "llava-hf/llava-1.5-7b-hf"),
        new("Fundament:Analysis:Vision:ApiKeySecret", "platform/vision-key"),
        new("Fundament:Analysis:Fusion:Endpoint", _models.Url),
        new("Fundament:Analysis:Fusion:Model", "meta-llama/Llama-3.1-8B-Instruct"),
        new("Fundament:Analysis:MaxAttempts", "3"),
    ];

    [Theory]
    [InlineData(ModelServer.Vllm)]
    [InlineData(ModelServer.LlamaCpp)]
    [InlineData(ModelServer.Ollama)]
    public async Task A_ready_image_is_read_captioned_embedded_and_described_and_search_finds_it(ModelServer server)
    {
        Assert.SkipUnless(Tool("tesseract"), "tesseract is not installed (CI installs tesseract-ocr)");
        _models.Server = server;
        var id = await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png");
        await AnalyseAsync();

        var analysis = await AnalysisAsync(Admin, id);
        foreach (var stage in new[] { "ocr", "caption", "embedding", "fusion" })
        {
            var row = Stage(analysis, stage);
            Assert.True(row["state"]!.GetValue<string>() == "succeeded", $"{stage}: {row.ToJsonString()}");
            Assert.Equal(1, row["attempts"]!.GetValue<int>());
        }
        var ocr = Stage(analysis, "ocr")["result"]!;
        Assert.Contains("INVOICE", ocr["text"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("4711", ocr["text"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.InRange(ocr["confidence"]!.GetValue<double>(), 50, 100);
        Assert.Equal("A printed invoice lying on a desk.", Stage(analysis, "caption")["result"]!["caption"]!.GetValue<string>());
        Assert.Equal(["invoice", "paper", "desk"], Stage(analysis, "caption")["result"]!["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal("llava-hf/llava-1.5-7b-hf", Stage(analysis, "caption")["model"]!.GetValue<string>());
        Assert.Equal(512, Stage(analysis, "embedding")["result"]!["dimensions"]!.GetValue<int>());
        Assert.Equal("Invoice 4711", analysis["summary"]!["title"]!.GetValue<string>());
        Assert.Equal("en", analysis["summary"]!["language"]!.GetValue<string>());

        // The picture went as one data: URL in one message; fusion got the OCR text and the caption.
        var requests = _models.Requests.ToList();
        Assert.Equal(2, requests.Count);
        var visionRequest = requests.Single(r => !FakeOpenAiServer.Prompt(r.Body).Contains("catalogue", StringComparison.Ordinal));
        Assert.Equal("Bearer vk-4f1c9a", visionRequest.Authorization);
        Assert.Equal("Bearer none", requests.Single(r => r != visionRequest).Authorization);
        var vision = visionRequest.Body;
        var message = Assert.Single(vision["messages"]!.AsArray())!;
        var image = Assert.Single(message["content"]!.AsArray(), p => p!["type"]!.GetValue<string>() == "image_url")!;
        Assert.StartsWith("data:image/jpeg;base64,", image["image_url"]!["url"]!.GetValue<string>(), StringComparison.Ordinal);
        var fusionPrompt = FakeOpenAiServer.Prompt(requests.Single(r => FakeOpenAiServer.Prompt(r.Body).Contains("catalogue", StringComparison.Ordinal)).Body);
        Assert.Contains("4711", fusionPrompt, StringComparison.Ordinal);
        Assert.Contains("A printed invoice lying on a desk.", fusionPrompt, StringComparison.Ordinal);

        // Search finds it by OCR text, by the fused tags, and by a prefix; nothing for a word it does not hold.
        foreach (var query in new[] { "invoice", "zebrafish", "4711 fundam", "INVOICE" })
        {
            var hits = await SearchAsync(Admin, query);
            Assert.True(hits.Count == 1 && hits[0]!["assetId"]!.GetValue<string>() == id, $"'{query}': {hits.ToJsonString()}");
        }
        Assert.Empty(await SearchAsync(Admin, "giraffe"));
        // FTS syntax in a query is text, not syntax.
        Assert.Empty(await SearchAsync(Admin, "invoice\" OR \"x* NEAR("));
    }

    [Fact]
    public async Task Another_user_sees_neither_the_analysis_nor_the_asset_in_search_and_cannot_retry_a_shared_one()
    {
        var id = await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png");
        await AnalyseAsync();
        var (other, otherId, _) = await Factory.UserClientAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/v1/media/{id}/analysis", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/v1/media/{id}/similar", Ct)).StatusCode);
        Assert.Empty(await SearchAsync(other, "invoice"));

        // Shared with them: they may read it and find it, not run it again.
        Assert.Equal(HttpStatusCode.OK, (await Admin.PatchAsJsonAsync($"/api/v1/media/{id}", new { sharedWith = new[] { otherId } }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync($"/api/v1/media/{id}/analysis", Ct)).StatusCode);
        Assert.Single(await SearchAsync(other, "invoice"));
        await (await other.PostAsync($"/api/v1/media/{id}/analysis/ocr/retry", null, Ct)).AssertProblemAsync(HttpStatusCode.Forbidden);

        // Bad input changes nothing.
        await (await Admin.PostAsync($"/api/v1/media/{id}/analysis/everything/retry", null, Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.GetAsync("/api/v1/media/search?q=%20%22%2A", Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.GetAsync("/api/v1/media/search?q=invoice&limit=0", Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
        await (await Admin.GetAsync($"/api/v1/media/{id}/similar?limit=1000", Ct)).AssertProblemAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_llama_cpp_server_without_a_vision_projector_fails_the_caption_at_once_and_a_retry_after_the_fix_succeeds()
    {
        Assert.SkipUnless(Tool("tesseract"), "tesseract is not installed (CI installs tesseract-ocr)");
        _models.Server = ModelServer.LlamaCpp;
        _models.RefuseImages = true;
        var id = await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png");
        await AnalyseAsync();

        var analysis = await AnalysisAsync(Admin, id);
        var caption = Stage(analysis, "caption");
        Assert.Equal("failed", caption["state"]!.GetValue<string>());
        Assert.Equal(1, caption["attempts"]!.GetValue<int>());
        Assert.Contains("does not accept images", caption["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("--mmproj", caption["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        // Fusion does not wait for a caption that will not come: it works from the OCR text.
        Assert.Equal("succeeded", Stage(analysis, "fusion")["state"]!.GetValue<string>());
        Assert.DoesNotContain("A printed invoice", FakeOpenAiServer.Prompt(_models.Requests.Last().Body), StringComparison.Ordinal);

        // Still running or waiting: 409. Ended: a retry runs it again, and fusion after it.
        _models.RefuseImages = false;
        var retry = await Admin.PostAsync($"/api/v1/media/{id}/analysis/caption/retry", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
        await (await Admin.PostAsync($"/api/v1/media/{id}/analysis/caption/retry", null, Ct)).AssertProblemAsync(HttpStatusCode.Conflict);
        await AnalyseAsync();
        analysis = await AnalysisAsync(Admin, id);
        Assert.Equal("succeeded", Stage(analysis, "caption")["state"]!.GetValue<string>());
        Assert.Equal("succeeded", Stage(analysis, "fusion")["state"]!.GetValue<string>());
        Assert.Contains("A printed invoice", FakeOpenAiServer.Prompt(_models.Requests.Last().Body), StringComparison.Ordinal);

        // The retry is audited.
        var audit = await Admin.GetFromJsonAsync<JsonNode>("/api/v1/audit?action=analysis.retry", Ct);
        Assert.Contains(audit!["items"]!.AsArray(), e => e!["target"]!.GetValue<string>() == $"media:{id}");
    }

    [Fact]
    public async Task Invalid_JSON_from_the_language_model_is_asked_again_and_fails_the_stage_only_when_it_stays_invalid()
    {
        var first = await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "first.png");
        // Fusion's first answer is prose around broken JSON, its second fine.
        _models.DefaultAnswer = request => FakeOpenAiServer.Prompt(request).Contains("catalogue", StringComparison.Ordinal)
            ? (FakeOpenAiServer.Prompt(request).Contains("cannot be used", StringComparison.Ordinal) ? Fused : "Sure! Here is the entry: {\"title\": \"Invoice\", \"tags\": [\"a\",}")
            : Caption;
        await AnalyseAsync();
        var analysis = await AnalysisAsync(Admin, first);
        Assert.Equal("succeeded", Stage(analysis, "fusion")["state"]!.GetValue<string>());
        var fusionRequests = _models.Requests.Where(r => FakeOpenAiServer.Prompt(r.Body).Contains("catalogue", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, fusionRequests.Count);
        Assert.Contains("not valid JSON", FakeOpenAiServer.Prompt(fusionRequests[1].Body), StringComparison.Ordinal);

        // Valid JSON of the wrong shape (a number for a title, a field too many) is as unusable, and three tries end it.
        _models.DefaultAnswer = request => FakeOpenAiServer.Prompt(request).Contains("catalogue", StringComparison.Ordinal)
            ? """{"title": 7, "description": "x", "tags": [], "objects": [], "text": "", "language": "en", "rating": 5}"""
            : Caption;
        var second = await UploadNewAsync(Admin, TextImage("RECEIPT 99", "SHOP"), "second.png");
        await AnalyseAsync();
        var fusion = Stage(await AnalysisAsync(Admin, second), "fusion");
        Assert.Equal("failed", fusion["state"]!.GetValue<string>());
        Assert.Contains("stayed unusable after 3 tries", fusion["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("\"title\" must be", fusion["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null((await AnalysisAsync(Admin, second))["summary"]);
    }

    [Fact]
    public async Task An_endpoint_that_is_down_is_retried_with_back_off_and_the_stage_fails_only_when_the_attempts_run_out()
    {
        _models.Script.Enqueue(_ => FakeOpenAiServer.Status(503, "loading model"));
        var id = await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png");
        await AnalyseAsync();
        var caption = Stage(await AnalysisAsync(Admin, id), "caption");
        Assert.Equal("running", caption["state"]!.GetValue<string>());
        Assert.Contains("attempt 1 of 3", caption["reason"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("503", caption["reason"]!.GetValue<string>(), StringComparison.Ordinal);

        await AdvanceAsync(TimeSpan.FromMinutes(10));
        await AnalyseAsync();
        caption = Stage(await AnalysisAsync(Admin, id), "caption");
        Assert.Equal("succeeded", caption["state"]!.GetValue<string>());
        Assert.Equal(2, caption["attempts"]!.GetValue<int>());

        // Down for good: after three attempts the stage fails with the last error, and the job is not dead-lettered twice over.
        for (var i = 0; i < 3; i++)
        {
            _models.Script.Enqueue(_ => FakeOpenAiServer.Status(502, "bad gateway"));
        }
        var other = await UploadNewAsync(Admin, TextImage("RECEIPT 99", "SHOP"), "other.png");
        for (var i = 0; i < 3; i++)
        {
            await AnalyseAsync();
            await AdvanceAsync(TimeSpan.FromMinutes(30));
        }
        caption = Stage(await AnalysisAsync(Admin, other), "caption");
        Assert.Equal("failed", caption["state"]!.GetValue<string>());
        Assert.Equal(3, caption["attempts"]!.GetValue<int>());
        Assert.Contains("failed after 3 attempts", caption["reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stage_left_running_by_a_job_that_will_not_finish_it_can_be_run_again()
    {
        _models.Script.Enqueue(_ => FakeOpenAiServer.Status(503, "loading model"));
        var id = await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png");
        await AnalyseAsync();
        var caption = Stage(await AnalysisAsync(Admin, id), "caption");
        Assert.Equal("running", caption["state"]!.GetValue<string>());

        // Its job is waiting for the next attempt: a retry now would run it twice.
        await (await Admin.PostAsync($"/api/v1/media/{id}/analysis/caption/retry", null, Ct)).AssertProblemAsync(HttpStatusCode.Conflict);

        // An operator cancels the job: the stage would stay running for ever, so now a retry starts it over.
        var job = caption["jobId"]!.GetValue<string>();
        Assert.True((await Admin.PostAsync($"/api/v1/jobs/{job}/cancel", null, Ct)).IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await Admin.PostAsync($"/api/v1/media/{id}/analysis/caption/retry", null, Ct)).StatusCode);
        await AnalyseAsync();
        var analysis = await AnalysisAsync(Admin, id);
        Assert.Equal("succeeded", Stage(analysis, "caption")["state"]!.GetValue<string>());
        Assert.Equal(1, Stage(analysis, "caption")["attempts"]!.GetValue<int>());
        Assert.Equal("succeeded", Stage(analysis, "fusion")["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task Embeddings_find_the_near_duplicate_among_distractors()
    {
        var original = Fixture("canon-paris.jpg");
        var id = await UploadNewAsync(Admin, original, "paris.jpg");
        // The same photo, smaller, a little brighter and recompressed: what a messenger app makes of it.
        byte[] copy;
        using (var image = NetVips.Image.NewFromBuffer(original))
        using (var smaller = image.Resize(0.6))
        using (var brighter = smaller.Linear([1.08], [4.0]))
        {
            copy = brighter.Cast(NetVips.Enums.BandFormat.Uchar).JpegsaveBuffer(q: 60);
        }
        var duplicate = await UploadNewAsync(Admin, copy, "paris-copy.jpg");
        var distractors = new[]
        {
            await UploadNewAsync(Admin, Fixture("nikon-rio.jpg"), "rio.jpg"),
            await UploadNewAsync(Admin, TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png"),
            await UploadNewAsync(Admin, Image("png", 640, 480), "gradient.png"),
        };
        await AnalyseAsync();

        var similar = await Admin.GetFromJsonAsync<JsonNode>($"/api/v1/media/{id}/similar?limit=10", Ct);
        var items = similar!["items"]!.AsArray();
        Assert.Equal("resnet18-imagenet", similar["model"]!.GetValue<string>());
        Assert.Equal(4, items.Count);
        Assert.Equal(duplicate, items[0]!["assetId"]!.GetValue<string>());
        Assert.True(items[0]!["nearDuplicate"]!.GetValue<bool>(), items.ToJsonString());
        Assert.All(items.Skip(1), i => Assert.False(i!["nearDuplicate"]!.GetValue<bool>(), items.ToJsonString()));
        Assert.True(items[0]!["score"]!.GetValue<double>() - items[1]!["score"]!.GetValue<double>() > 0.1, items.ToJsonString());
        Assert.Equal(distractors.Order(), items.Skip(1).Select(i => i!["assetId"]!.GetValue<string>()).Order());
    }

    protected async Task AnalyseAsync()
    {
        // media.process, then media.ready on the bus, then the stages, then fusion: until nothing moves.
        for (var round = 0; round < 10; round++)
        {
            await ProcessAsync();
            if (await Factory.Services.RelayEventsAsync(Ct) == 0)
            {
                await ProcessAsync();
                if (await Factory.Services.RelayEventsAsync(Ct) == 0)
                {
                    return;
                }
            }
        }
    }

    private async Task<JsonNode> AnalysisAsync(HttpClient client, string id)
    {
        var response = await client.GetAsync($"/api/v1/media/{id}/analysis", Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return await response.JsonAsync();
    }

    private static JsonNode Stage(JsonNode analysis, string stage) =>
        analysis["stages"]!.AsArray().Single(s => s!["stage"]!.GetValue<string>() == stage)!;

    private async Task<JsonArray> SearchAsync(HttpClient client, string query)
    {
        var response = await client.GetAsync("/api/v1/media/search?q=" + Uri.EscapeDataString(query), Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return (await response.JsonAsync())["items"]!.AsArray();
    }

    /// <summary>Black text on white, two lines, as a scanner would make it.</summary>
    internal static byte[] TextImage(params string[] lines)
    {
        using var text = NetVips.Image.Text(string.Join("\n", lines), font: "sans bold 40", dpi: 150);
        using var inverted = text.Linear([-1.0], [255.0]).Cast(NetVips.Enums.BandFormat.Uchar);
        using var page = inverted.Embed(60, 60, text.Width + 120, text.Height + 120, extend: NetVips.Enums.Extend.White);
        return page.PngsaveBuffer();
    }
}

/// <summary>The same on PostgreSQL: its full-text search (tsvector) instead of FTS5, and its row locks.</summary>
public sealed class PostgresAnalysisPipelineTests : AnalysisPipelineTests
{
    public override ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"{PostgresFundamentFactory.Variable} is not set");
        return base.InitializeAsync();
    }

    protected override FundamentFactory CreateFactory(IEnumerable<KeyValuePair<string, string>> settings) => new PostgresFundamentFactory { Extra = settings };
}

/// <summary>The embedded default: no model endpoint configured. OCR and embeddings run locally; the model stages say why they were skipped; nothing fails.</summary>
public sealed class AnalysisDefaultsTests : MediaTestBase
{
    protected override IEnumerable<KeyValuePair<string, string>> Settings() => [new("Fundament:Media:TrashRetention", "00:05:00")];

    [Fact]
    public async Task Without_endpoints_OCR_and_embeddings_run_the_model_stages_are_skipped_and_nothing_fails()
    {
        var id = await UploadNewAsync(Admin, AnalysisPipelineTests.TextImage("INVOICE 4711", "FUNDAMENT"), "scan.png");
        for (var round = 0; round < 4; round++)
        {
            await ProcessAsync();
            await Factory.Services.RelayEventsAsync(Ct);
        }
        var analysis = await (await Admin.GetAsync($"/api/v1/media/{id}/analysis", Ct)).JsonAsync();
        string StateOf(string stage) => analysis["stages"]!.AsArray().Single(s => s!["stage"]!.GetValue<string>() == stage)!["state"]!.GetValue<string>();
        string? ReasonOf(string stage) => analysis["stages"]!.AsArray().Single(s => s!["stage"]!.GetValue<string>() == stage)!["reason"]?.GetValue<string>();
        Assert.Equal("succeeded", StateOf("embedding"));
        // On a fresh machine with only the .NET SDK, OCR says why it did not run, and nothing fails.
        var tesseract = Tool("tesseract");
        Assert.Equal(tesseract ? "succeeded" : "skipped", StateOf("ocr"));
        if (!tesseract)
        {
            Assert.Contains("tesseract is not installed", ReasonOf("ocr"), StringComparison.Ordinal);
        }
        Assert.Equal("skipped", StateOf("caption"));
        Assert.Equal("skipped", StateOf("fusion"));
        Assert.Contains("no endpoint configured (Fundament:Analysis:Vision:Endpoint", ReasonOf("caption"), StringComparison.Ordinal);
        Assert.Contains("no endpoint configured (Fundament:Analysis:Fusion:Endpoint", ReasonOf("fusion"), StringComparison.Ordinal);
        Assert.Null(analysis["summary"]);
        var hits = (await (await Admin.GetAsync("/api/v1/media/search?q=invoice", Ct)).JsonAsync())["items"]!.AsArray();
        if (tesseract)
        {
            Assert.Equal(id, Assert.Single(hits)!["assetId"]!.GetValue<string>());
        }

        // Audio has no picture: its stages are skipped with that reason, not failed.
        var audio = await MakeWithAsync("ffmpeg", "mp3", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-y", "{out}");
        var audioId = await UploadNewAsync(Admin, audio, "tone.mp3");
        for (var round = 0; round < 4; round++)
        {
            await ProcessAsync();
            await Factory.Services.RelayEventsAsync(Ct);
        }
        var stages = (await (await Admin.GetAsync($"/api/v1/media/{audioId}/analysis", Ct)).JsonAsync())["stages"]!.AsArray();
        Assert.All(stages, s => Assert.Equal("skipped", s!["state"]!.GetValue<string>()));
        Assert.Contains("audio has no picture", stages.Single(s => s!["stage"]!.GetValue<string>() == "ocr")!["reason"]!.GetValue<string>(), StringComparison.Ordinal);

        // Trashed, then purged: analysis forgets it.
        Assert.True((await Admin.DeleteAsync($"/api/v1/media/{id}", Ct)).IsSuccessStatusCode);
        Assert.Empty((await (await Admin.GetAsync("/api/v1/media/search?q=invoice", Ct)).JsonAsync())["items"]!.AsArray());
        await AdvanceAsync(TimeSpan.FromMinutes(6));
        var purge = await (await Admin.PostAsync("/api/v1/media/policies/run?dryRun=false", null, Ct)).JsonAsync();
        Assert.Contains(purge["actions"]!.AsArray(), a => a!["action"]!.GetValue<string>() == "purge" && a["assetId"]!.GetValue<string>() == id);
        await Factory.Services.RelayEventsAsync(Ct);
        var database = Factory.Services.GetRequiredService<Fundament.Core.Storage.IDatabase>();
        await using var connection = await database.OpenAsync(Ct);
        foreach (var table in new[] { "analysis_stages", "analysis_documents", "analysis_embeddings" })
        {
            Assert.Equal(0L, await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, $"SELECT COUNT(*) FROM {table} WHERE asset_id = @id", new { id }));
        }
    }
}
