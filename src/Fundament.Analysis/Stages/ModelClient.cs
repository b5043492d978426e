using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Fundament.Analysis.Stages;

/// <summary>
/// Talks to an OpenAI-compatible chat endpoint (vLLM, llama.cpp's server, Ollama's <c>/v1</c>) through
/// <see cref="IChatClient"/>, and gets a JSON object of a known shape back: an answer that is not
/// one is asked again, with what was wrong, up to <see cref="ModelEndpointOptions.InvalidAnswerRetries"/>
/// times. The SDK's own retries are off: the job queue retries with back-off, and notes each attempt.
/// </summary>
internal sealed class ModelClient(IServiceProvider services)
{
    public async Task<(JsonObject Answer, string Model)> AskAsync(
        ModelEndpointOptions endpoint, string setting, IReadOnlyList<AIContent> question, Func<JsonObject, string?> validate, CancellationToken cancellationToken)
    {
        if (!endpoint.Configured)
        {
            throw new StageSkippedException($"skipped: no endpoint configured (Fundament:Analysis:{setting}:Endpoint and Model)");
        }
        using var chat = await CreateAsync(endpoint, setting, cancellationToken);
        var messages = new List<ChatMessage> { new(ChatRole.User, [.. question]) };
        var options = new ChatOptions { MaxOutputTokens = endpoint.MaxTokens, Temperature = 0.2f, ResponseFormat = ChatResponseFormat.Json };
        string? problem = null;
        for (var round = 0; round <= endpoint.InvalidAnswerRetries; round++)
        {
            ChatResponse response;
            using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                limit.CancelAfter(endpoint.Timeout);
                try
                {
                    response = await chat.GetResponseAsync(messages, options, limit.Token);
                }
                catch (ClientResultException ex)
                {
                    throw Classify(ex, setting);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"the {setting} endpoint did not answer within {endpoint.Timeout.TotalSeconds:0}s");
                }
            }
            var text = response.Text;
            problem = Parse(text, out var answer) ?? validate(answer!);
            if (problem is null)
            {
                return (answer!, response.ModelId ?? endpoint.Model!);
            }
            messages.Add(new ChatMessage(ChatRole.Assistant, text));
            messages.Add(new ChatMessage(ChatRole.User, $"That answer cannot be used: {problem}. Answer again with only the JSON object, nothing before or after it."));
        }
        throw new StageFailedException($"the model's answer stayed unusable after {endpoint.InvalidAnswerRetries + 1} tries: {problem}");
    }

    private async Task<IChatClient> CreateAsync(ModelEndpointOptions endpoint, string setting, CancellationToken cancellationToken)
    {
        var key = "none";
        if (!string.IsNullOrWhiteSpace(endpoint.ApiKeySecret))
        {
            var secrets = services.GetService<IPlatformSecrets>() ?? throw new StageFailedException($"Fundament:Analysis:{setting}:ApiKeySecret needs the vault module");
            key = await secrets.ReadAsync(endpoint.ApiKeySecret, cancellationToken)
                ?? throw new StageFailedException($"the vault has no readable current version of the secret Fundament:Analysis:{setting}:ApiKeySecret names");
        }
        var client = new OpenAIClient(new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = new Uri(endpoint.Endpoint!),
            NetworkTimeout = endpoint.Timeout,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
        return client.GetChatClient(endpoint.Model).AsIChatClient();
    }

    /// <summary>Errors a retry cannot fix fail the stage at once; the rest (429, 5xx) go back to the queue's back-off.</summary>
    internal static Exception Classify(ClientResultException ex, string setting)
    {
        var body = ex.GetRawResponse()?.Content?.ToString() ?? ex.Message;
        // The reason is shown to everyone who may see the asset: the server's words, not its whole answer.
        var text = body;
        try
        {
            if (JsonNode.Parse(body) is JsonObject json && json["error"] is { } error)
            {
                text = (error is JsonObject o && o["message"] is { } m ? m : error).ToString();
            }
        }
        catch (JsonException)
        {
        }
        var detail = text.Length > 160 ? text[..160] + "…" : text;
        if (body.Contains("image input is not supported", StringComparison.OrdinalIgnoreCase)
            || body.Contains("does not support image", StringComparison.OrdinalIgnoreCase)
            || body.Contains("not a multimodal model", StringComparison.OrdinalIgnoreCase))
        {
            return new StageFailedException($"the {setting} endpoint's model does not accept images (for llama.cpp, start llama-server with the model's --mmproj): {detail}", ex);
        }
        return ex.Status switch
        {
            400 or 404 or 422 => new StageFailedException($"the {setting} endpoint refused the request ({ex.Status}): {detail}", ex),
            401 or 403 => new StageFailedException($"the {setting} endpoint refused the credentials ({ex.Status}); check Fundament:Analysis:{setting}:ApiKeySecret", ex),
            _ => new HttpRequestException($"the {setting} endpoint answered {ex.Status}: {detail}", ex),
        };
    }

    /// <summary>The JSON object in an answer, also when a model wraps it in a ```json fence or a sentence.</summary>
    internal static string? Parse(string? text, out JsonObject? answer)
    {
        answer = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return "the answer was empty";
        }
        var start = text.IndexOf('{', StringComparison.Ordinal);
        var end = text.LastIndexOf('}');
        if (start < 0 || end <= start)
        {
            return "the answer holds no JSON object";
        }
        try
        {
            answer = JsonNode.Parse(text[start..(end + 1)]) as JsonObject;
            return answer is null ? "the answer is not a JSON object" : null;
        }
        catch (JsonException ex)
        {
            return "the answer is not valid JSON (" + ex.Message.Split('.')[0] + ")";
        }
    }

    /// <summary>A string field, required and at most <paramref name="max"/> characters; null when it is.</summary>
    internal static string? RequireString(JsonObject answer, string field, int max, bool allowEmpty = false) =>
        answer[field] is JsonValue v && v.TryGetValue<string>(out var s) && (allowEmpty || s.Trim().Length > 0) && s.Length <= max
            ? null
            : $"\"{field}\" must be a {(allowEmpty ? "" : "non-empty ")}string of at most {max} characters";

    /// <summary>An array of at most <paramref name="max"/> non-empty strings.</summary>
    internal static string? RequireStrings(JsonObject answer, string field, int max) =>
        answer[field] is JsonArray a && a.Count <= max && a.All(x => x is JsonValue v && v.TryGetValue<string>(out var s) && s.Trim().Length is > 0 and <= 100)
            ? null
            : $"\"{field}\" must be an array of at most {max} non-empty strings";

    internal static List<string> Strings(JsonObject answer, string field) =>
        [.. answer[field]!.AsArray().Select(x => x!.GetValue<string>().Trim().ToLowerInvariant()).Distinct(StringComparer.Ordinal)];
}
