using System.Diagnostics;
using System.Net.Http.Json;

namespace Fundament.Tests.Infrastructure;

/// <summary>Starts a .NET program of the build (the server, a sample, the test upstream) as a real child process.</summary>
public static class ChildProcess
{
    /// <summary>
    /// Runs <c>dotnet <paramref name="dll"/> <paramref name="args"/></c> with <paramref name="environment"/>
    /// added. Its output goes to <paramref name="onOutput"/> (standard error to <paramref name="onError"/>) line by line, or is dropped; it is always
    /// drained, since a full pipe would stall the process.
    /// </summary>
    public static Process StartDotnet(string dll, IEnumerable<KeyValuePair<string, string>> environment, IEnumerable<string> args,
        string? workingDirectory = null, Action<string>? onOutput = null, Action<string>? onError = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                onOutput?.Invoke(line);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                onError?.Invoke(line);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>An HttpClient for the server on <paramref name="port"/>, signed in as admin once it lets the admin in (up to a minute).</summary>
    public static async Task<HttpClient> SignedInAsync(int port, string password, CancellationToken cancellationToken)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        for (var i = 0; i < 240; i++)
        {
            try
            {
                var login = await http.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password }, cancellationToken);
                if (login.StatusCode == System.Net.HttpStatusCode.OK)
                {
                    var token = (await login.Content.ReadFromJsonAsync<System.Text.Json.Nodes.JsonNode>(cancellationToken))!["access_token"]!.GetValue<string>();
                    http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
                    return http;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(250, cancellationToken);
        }
        http.Dispose();
        throw new TimeoutException("the server never let the admin in");
    }
}
