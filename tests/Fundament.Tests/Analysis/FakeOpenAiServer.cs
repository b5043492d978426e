using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Fundament.Tests.Analysis;

/// <summary>The server software whose OpenAI-compatible answers the fake reproduces.</summary>
public enum ModelServer
{
    /// <summary>vLLM's <c>/v1/chat/completions</c> (docs.vllm.ai, "OpenAI-Compatible Server"): <c>stop_reason</c>, <c>prompt_logprobs</c>, <c>reasoning_content</c>.</summary>
    Vllm,

    /// <summary>
    /// llama.cpp's <c>llama-server</c> (github.com/ggml-org/llama.cpp, tools/server/README.md, "POST /v1/chat/completions"):
    /// <c>system_fingerprint</c> and <c>timings</c>; started without <c>--mmproj</c> it answers an image with
    /// 500 <c>{"error":{"code":500,"message":"image input is not supported - hint: ...","type":"server_error"}}</c>.
    /// </summary>
    LlamaCpp,

    /// <summary>Ollama's OpenAI compatibility (github.com/ollama/ollama, docs/openai.md): <c>system_fingerprint: fp_ollama</c>, no <c>logprobs</c>.</summary>
    Ollama,
}

/// <summary>
/// A local OpenAI-compatible chat endpoint on loopback: answers each request with the next scripted
/// answer (or the default), in the shape of the chosen <see cref="ModelServer"/>, and records every request.
/// </summary>
public sealed class FakeOpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeOpenAiServer(WebApplication app) => _app = app;

    public ModelServer Server { get; set; } = ModelServer.Vllm;

    /// <summary>Answers used in order; when empty, <see cref="DefaultAnswer"/>.</summary>
    public ConcurrentQueue<Func<JsonObject, IResult>> Script { get; } = new();

    /// <summary>The content the model answers with when nothing is scripted.</summary>
    public Func<JsonObject, string> DefaultAnswer { get; set; } = _ => "{}";

    /// <summary>When true, a request with an image gets llama.cpp's 500 for a server without a multimodal projector.</summary>
    public bool RefuseImages { get; set; }

    public ConcurrentQueue<(JsonObject Body, string? Authorization)> Requests { get; } = new();

    public string Url { get; private set; } = "";

    public static async Task<FakeOpenAiServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new FakeOpenAiServer(app);
        app.MapPost("/v1/chat/completions", async (HttpContext context) =>
        {
            var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
            server.Requests.Enqueue((body, context.Request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null));
            var hasImage = body["messages"]!.AsArray().Any(m => m!["content"] is JsonArray parts && parts.Any(p => p!["type"]?.GetValue<string>() == "image_url"));
            if (hasImage && server.RefuseImages)
            {
                return Results.Json(new JsonObject
                {
                    ["error"] = new JsonObject
                    {
                        ["code"] = 500,
                        ["message"] = "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj",
                        ["type"] = "server_error",
                    },
                }, statusCode: 500);
            }
            if (server.Script.TryDequeue(out var scripted))
            {
                return scripted(body);
            }
            return server.Answer(body, server.DefaultAnswer(body));
        });
        await app.StartAsync();
        server.Url = app.Urls.First() + "/v1";
        return server;
    }

    /// <summary>A successful completion with <paramref name="content"/>, in the configured server's shape.</summary>
    public IResult Answer(JsonObject request, string content)
    {
        var model = request["model"]!.GetValue<string>();
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var usage = new JsonObject { ["prompt_tokens"] = 612, ["completion_tokens"] = 41, ["total_tokens"] = 653 };
        JsonObject response = Server switch
        {
            ModelServer.Vllm => new JsonObject
            {
                ["id"] = "chatcmpl-" + Guid.NewGuid().ToString("N"),
                ["object"] = "chat.completion",
                ["created"] = created,
                ["model"] = model,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["reasoning_content"] = null, ["content"] = content, ["tool_calls"] = new JsonArray() },
                    ["logprobs"] = null,
                    ["finish_reason"] = "stop",
                    ["stop_reason"] = null,
                }),
                ["usage"] = usage,
                ["prompt_logprobs"] = null,
            },
            ModelServer.LlamaCpp => new JsonObject
            {
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["finish_reason"] = "stop",
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content },
                }),
                ["created"] = created,
                ["model"] = model,
                ["system_fingerprint"] = "b5002-e0dbec0b",
                ["object"] = "chat.completion",
                ["usage"] = usage,
                ["id"] = "chatcmpl-" + Guid.NewGuid().ToString("N")[..16],
                ["timings"] = new JsonObject { ["prompt_n"] = 612, ["prompt_ms"] = 412.3, ["predicted_n"] = 41, ["predicted_ms"] = 830.1 },
            },
            _ => new JsonObject
            {
                ["id"] = "chatcmpl-" + Random.Shared.Next(100, 999),
                ["object"] = "chat.completion",
                ["created"] = created,
                ["model"] = model,
                ["system_fingerprint"] = "fp_ollama",
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content },
                    ["finish_reason"] = "stop",
                }),
                ["usage"] = usage,
            },
        };
        return Results.Text(response.ToJsonString(), "application/json");
    }

    /// <summary>The text of every message part of a request, joined.</summary>
    public static string Prompt(JsonObject request) => string.Join("\n", request["messages"]!.AsArray().SelectMany(m => m!["content"] switch
    {
        JsonValue v => [v.GetValue<string>()],
        JsonArray parts => parts.Where(p => p!["type"]!.GetValue<string>() == "text").Select(p => p!["text"]!.GetValue<string>()),
        _ => [],
    }));

    public static IResult Status(int status, string message) =>
        Results.Json(new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "server_error", ["code"] = status } }, statusCode: status);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
