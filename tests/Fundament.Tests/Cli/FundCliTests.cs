using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Cli;

/// <summary>
/// <c>fund</c> as a user runs it: a real process against a real server port, with its own config
/// folder. Login, contexts and file modes, secrets and configuration, JSON output, problem
/// documents as one line with exit codes, and a media upload interrupted with SIGINT and resumed by
/// running the same command again.
/// </summary>
public sealed class FundCliTests : IAsyncLifetime
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private readonly KestrelFundamentFactory _factory = new();
    private readonly string _home = Path.Combine(Path.GetTempPath(), "fundament-tests", "fund-" + Guid.NewGuid().ToString("N"));

    public ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_home);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        Directory.Delete(_home, recursive: true);
    }

    private static string FundDll
    {
        get
        {
            var testBin = AppContext.BaseDirectory;
            var marker = Path.Combine("tests", "Fundament.Tests", "bin");
            var index = testBin.LastIndexOf(marker, StringComparison.Ordinal);
            return Path.Combine(testBin[..index], "src", "Fundament.Cli", "bin", testBin[(index + marker.Length)..].Trim(Path.DirectorySeparatorChar), "fund.dll");
        }
    }

    private Process Start(string? input, params string[] args)
    {
        // Through env --default-signal: a test runner (dotnet test) may start its children with SIGINT ignored, which they would inherit;
        // a user's shell never does that to a foreground command, and neither may this test.
        var info = new ProcessStartInfo(OperatingSystem.IsWindows() ? "dotnet" : "env")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = _home,
        };
        if (!OperatingSystem.IsWindows())
        {
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(FundDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["FUND_CONFIG_DIR"] = Path.Combine(_home, "config");
        info.Environment["NO_COLOR"] = "1";
        var process = Process.Start(info)!;
        if (input is not null)
        {
            process.StandardInput.WriteLine(input);
        }
        process.StandardInput.Close();
        return process;
    }

    private async Task<(int ExitCode, string Out, string Err)> RunAsync(string? input, params string[] args)
    {
        using var process = Start(input, args);
        var stdout = process.StandardOutput.ReadToEndAsync(_ct);
        var stderr = process.StandardError.ReadToEndAsync(_ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private async Task LoginAsync()
    {
        var login = await RunAsync(FundamentFactory.AdminPassword, "login", "--server", _factory.Address.ToString(), "-u", "admin", "--password-stdin");
        Assert.True(login.ExitCode == 0, login.Err);
    }

    [Fact]
    public async Task Login_StoresTheContextPrivately_AndSecretsAndConfigurationRoundTrip_WithScriptableOutput()
    {
        // Before logging in: one line, the exit code for "not logged in".
        var early = await RunAsync(null, "secrets", "ls");
        Assert.Equal(3, early.ExitCode);
        Assert.Equal("fund: not logged in: run `fund login --server URL` first.", early.Err.Trim());

        await LoginAsync();
        var contexts = Path.Combine(_home, "config", "contexts.json");
        Assert.True(File.Exists(contexts));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(contexts));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(_home, "config")));
        }
        Assert.DoesNotContain(FundamentFactory.AdminPassword, await File.ReadAllTextAsync(contexts, _ct), StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync(null, "secrets", "put", "app/db", "password=hunter2", "user=app")).ExitCode);
        var field = await RunAsync(null, "secrets", "get", "app/db", "--field", "password");
        Assert.Equal((0, "hunter2"), (field.ExitCode, field.Out.Trim()));
        var listed = JsonNode.Parse((await RunAsync(null, "secrets", "ls", "-o", "json")).Out)!;
        Assert.Contains("app/db", listed["paths"]!.AsArray().Select(p => p!.GetValue<string>()));

        Assert.Equal(0, (await RunAsync(null, "config", "set", "shop", "limit", "5")).ExitCode);
        Assert.Equal(0, (await RunAsync(null, "config", "set", "shop", "limit", "7")).ExitCode);
        var resolved = JsonNode.Parse((await RunAsync(null, "config", "get", "shop", "-o", "json")).Out)!;
        Assert.Equal(7, resolved["values"]!["limit"]!.GetValue<int>());
        Assert.Equal(0, (await RunAsync(null, "config", "rollback", "shop", "limit", "1")).ExitCode);
        using var admin = await _factory.AdminAsync();
        Assert.Equal(5, (await admin.GetFromJsonAsync<JsonNode>("/api/v1/config/resolved?service=shop", _ct))!["values"]!["limit"]!.GetValue<int>());

        // A problem document is one line on stderr; 404 has its own exit code, a validation error the general one.
        var missing = await RunAsync(null, "secrets", "get", "app/none");
        Assert.Equal(4, missing.ExitCode);
        Assert.Single(missing.Err.Trim().Split('\n'));
        Assert.Contains("(HTTP 404)", missing.Err, StringComparison.Ordinal);
        var invalid = await RunAsync(null, "config", "set", "bad service!", "k", "1");
        Assert.Equal(1, invalid.ExitCode);
        Assert.Contains("(HTTP 400)", invalid.Err, StringComparison.Ordinal);
        Assert.Equal(2, (await RunAsync(null, "secrets", "frobnicate")).ExitCode);

        var audit = await RunAsync(null, "audit", "verify");
        Assert.Equal(0, audit.ExitCode);
        Assert.StartsWith("the audit chain verifies", audit.Out, StringComparison.Ordinal);

        // A wrong password: refused, and the stored context is left as it was.
        var before = await File.ReadAllTextAsync(contexts, _ct);
        var wrong = await RunAsync("not-the-password", "login", "-u", "admin", "--password-stdin");
        Assert.Equal(3, wrong.ExitCode);
        Assert.Equal(before, await File.ReadAllTextAsync(contexts, _ct));

        var bash = await RunAsync(null, "completion", "bash");
        Assert.Contains("complete -F _fund fund", bash.Out, StringComparison.Ordinal);
        Assert.Contains("upload ls get rm", bash.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_WithASecondFactor_TakesTheCode_AndWithoutOneSaysHowToGiveIt()
    {
        var (_, username) = await _factory.CreateUserAsync();
        using (var self = _factory.Bearer((await _factory.LoginAsync(username, Api.UserPassword))["access_token"]!.GetValue<string>()))
        {
            var secret = (await (await self.PostAsync("/api/v1/me/mfa/totp", null, _ct)).JsonAsync())["secret"]!.GetValue<string>();
            var code = new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime);
            (await self.PostAsJsonAsync("/api/v1/me/mfa/totp/confirm", new { code }, _ct)).EnsureSuccessStatusCode();
            _factory.Time.Advance(TimeSpan.FromSeconds(30));

            var without = await RunAsync(Api.UserPassword, "login", "--server", _factory.Address.ToString(), "-u", username, "--password-stdin");
            Assert.Equal(3, without.ExitCode);
            Assert.Contains("give the code with --otp", without.Err, StringComparison.Ordinal);

            var next = new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret)).ComputeTotp(_factory.Time.GetUtcNow().UtcDateTime);
            var with = await RunAsync(Api.UserPassword, "login", "--server", _factory.Address.ToString(), "-u", username, "--password-stdin", "--otp", next);
            Assert.True(with.ExitCode == 0, with.Err);
        }
        Assert.Equal(0, (await RunAsync(null, "secrets", "ls")).ExitCode);
    }

    [Fact]
    public async Task ParallelUploads_WithAnExpiredAccessToken_RefreshItOnce_AndTheSessionLives()
    {
        await LoginAsync();
        // The saved access token is past its time: every worker needs a fresh one at once, and a refresh token is single-use.
        var contexts = Path.Combine(_home, "config", "contexts.json");
        var config = JsonNode.Parse(await File.ReadAllTextAsync(contexts, _ct))!;
        config["contexts"]!["default"]!["expiresAt"] = DateTimeOffset.UtcNow.AddHours(-1).ToString("O");
        await File.WriteAllTextAsync(contexts, config.ToJsonString(), _ct);
        var folder = Path.Combine(_home, "photos");
        Directory.CreateDirectory(folder);
        var photo = await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Media", "Fixtures", "canon-paris.jpg"), _ct);
        for (var i = 0; i < 6; i++)
        {
            await File.WriteAllBytesAsync(Path.Combine(folder, $"p{i}.jpg"), [.. photo, (byte)i], _ct);
        }

        var upload = await RunAsync(null, "media", "upload", folder, "-p", "6", "-o", "json");
        Assert.True(upload.ExitCode == 0, upload.Err);
        Assert.Equal(6, JsonNode.Parse(upload.Out)!.AsArray().Count);
        // Had two workers used the same refresh token, the session would be over by now.
        Assert.Equal(0, (await RunAsync(null, "secrets", "ls")).ExitCode);
    }

    [Fact]
    public async Task AnUploadInterruptedWithSigint_ResumesWhereItStopped_WhenTheSameCommandRunsAgain()
    {
        await LoginAsync();
        // A real JPEG with 3 MiB of trailing bytes, sent at 256 KiB/s (about 12 s): SIGINT lands once the server has some of it.
        var file = Path.Combine(_home, "big.jpg");
        var bytes = (await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Media", "Fixtures", "canon-paris.jpg"), _ct))
            .Concat(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3 << 20)).ToArray();
        await File.WriteAllBytesAsync(file, bytes, _ct);
        using var admin = await _factory.AdminAsync();

        using (var first = Start(null, "media", "upload", file, "--chunk-size", "65536", "--limit-rate", "262144"))
        {
            var state = Path.Combine(_home, "config", "uploads.json");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            long received = 0;
            // Not a fixed sleep (a loaded machine stretches it): wait until the server reports bytes of this upload.
            while (received == 0)
            {
                Assert.True(DateTime.UtcNow < deadline && !first.HasExited, "the upload never started sending");
                await Task.Delay(50, _ct);
                if (File.Exists(state) && JsonNode.Parse(await File.ReadAllTextAsync(state, _ct))!.AsObject().SingleOrDefault().Value?.GetValue<string>() is { } at)
                {
                    using var probe = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(at)) { Headers = { { "Tus-Resumable", "1.0.0" } } }, _ct);
                    received = probe.Headers.TryGetValues("Upload-Offset", out var offsets) ? long.Parse(offsets.First(), CultureInfo.InvariantCulture) : 0;
                }
            }
            using (var interrupt = Process.Start("kill", ["-INT", first.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await interrupt.WaitForExitAsync(_ct);
            }
            await first.WaitForExitAsync(_ct);
            Assert.Equal(130, first.ExitCode);
            Assert.Contains("run the same command again", await first.StandardError.ReadToEndAsync(_ct), StringComparison.Ordinal);
        }

        // The server has part of it, and the CLI remembers where.
        var remembered = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_home, "config", "uploads.json"), _ct))!.AsObject().Single().Value!.GetValue<string>();
        Assert.StartsWith(_factory.Address.ToString(), remembered, StringComparison.Ordinal);
        using var head = await admin.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(remembered)) { Headers = { { "Tus-Resumable", "1.0.0" } } }, _ct);
        var offset = long.Parse(head.Headers.GetValues("Upload-Offset").Single(), CultureInfo.InvariantCulture);
        Assert.InRange(offset, 1, bytes.Length - 1);

        var second = await RunAsync(null, "media", "upload", file, "-o", "json");
        Assert.True(second.ExitCode == 0, second.Err);
        var result = JsonNode.Parse(second.Out)!.AsArray().Single()!;
        Assert.Equal(remembered, result["upload"]!.GetValue<string>());
        var asset = result["asset"]!.GetValue<string>();
        Assert.Equal(bytes, await admin.GetByteArrayAsync($"/api/v1/media/{asset}/content", _ct));
        Assert.Equal("{}", (await File.ReadAllTextAsync(Path.Combine(_home, "config", "uploads.json"), _ct)).Trim());
    }
}
