using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;

namespace Fundament.Tests.Hosting;

/// <summary>The real <c>fundament</c> process: start-up errors and readiness, as an operator sees them.</summary>
public sealed class ServerProcessTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, true);
        }
    }

    private static string ServerDll => Path.Combine(AppContext.BaseDirectory, "fundament.dll");

    private Process Start(IDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        info.ArgumentList.Add(ServerDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["Fundament__DataDir"] = _dataDir;
        info.Environment["Fundament__Identity__PasswordHashIterations"] = "10000";
        // Every process gets its own gateway port: tests run side by side.
        info.Environment["Fundament__Gateway__Urls"] = $"http://127.0.0.1:{FreePort()}";
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        return Process.Start(info)!;
    }

    private async Task<(int ExitCode, string Output)> RunToExitAsync(IDictionary<string, string> environment, params string[] args)
    {
        using var process = Start(environment, args);
        var stdout = process.StandardOutput.ReadToEndAsync(_ct);
        var stderr = process.StandardError.ReadToEndAsync(_ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    [Theory]
    [InlineData("Fundament__Identity__SigningAlgorithm", "HS256", "Fundament:Identity:SigningAlgorithm")]
    [InlineData("Fundament__Identity__AccessTokenLifetime", "00:00:05", "Fundament:Identity:AccessTokenLifetime")]
    [InlineData("Fundament__Storage__Provider", "oracle", "Fundament:Storage:Provider")]
    [InlineData("Fundament__MasterKey", "bm90LTMyLWJ5dGVz", "Fundament:MasterKey")]
    [InlineData("Fundament__Roles", "control,teapot", "Fundament:Roles")]
    [InlineData("Fundament__Identity__BootstrapAdminPassword", "password", "Fundament:Identity:BootstrapAdminPassword")]
    public async Task BadSetting_StopsTheProcess_NamingTheKey(string variable, string value, string key)
    {
        var (exitCode, output) = await RunToExitAsync(new Dictionary<string, string> { [variable] = value }, "--urls", "http://127.0.0.1:0");
        Assert.Equal(2, exitCode);
        Assert.Contains(key, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SharedStorage_WithoutAnIssuer_StopsTheProcess_NamingTheKey()
    {
        // Refused before anything connects: the database need not exist.
        var (exitCode, output) = await RunToExitAsync(new Dictionary<string, string>
        {
            ["Fundament__Storage__Provider"] = "postgres",
            ["ConnectionStrings__Fundament"] = "Host=127.0.0.1;Port=1;Database=none",
            ["Fundament__MasterKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        }, "--urls", "http://127.0.0.1:0");
        Assert.Equal(2, exitCode);
        Assert.Contains("Fundament:Identity:Issuer is required with PostgreSQL storage", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMasterKeyTheDatabaseWasNotSealedWith_StopsTheProcess_UnlessItIsARotationFromIt()
    {
        // The first start seals the database with the generated key.
        Assert.Equal(0, (await RunToExitAsync(new Dictionary<string, string>(), "admin", "recover", "--username", "ops")).ExitCode);
        var sealedWith = File.ReadAllText(Path.Combine(_dataDir, "master.key")).Trim();
        var other = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

        // Another key: refused before serving, naming the setting, with no stack trace.
        var (exitCode, output) = await RunToExitAsync(new Dictionary<string, string> { ["Fundament__MasterKey"] = other }, "--urls", "http://127.0.0.1:0");
        Assert.Equal(2, exitCode);
        Assert.Contains("Fundament:MasterKey (or Fundament:MasterKeyFile) is not the key this database was sealed with", output, StringComparison.Ordinal);
        Assert.DoesNotContain(other, output, StringComparison.Ordinal);
        Assert.DoesNotContain(sealedWith, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);

        // A database from before the check (nothing recorded): what is already encrypted tells the key apart.
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_dataDir, "fundament.db")};Pooling=false"))
        {
            await connection.OpenAsync(_ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM fundament_metadata";
            await command.ExecuteNonQueryAsync(_ct);
        }
        (exitCode, output) = await RunToExitAsync(new Dictionary<string, string> { ["Fundament__MasterKey"] = other }, "--urls", "http://127.0.0.1:0");
        Assert.Equal(2, exitCode);
        Assert.Contains("is encrypted under key id", output, StringComparison.Ordinal);

        // The same key as the new one of a rotation (the old one kept as previous): accepted, and from then on it is the key.
        var rotated = await RunToExitAsync(new Dictionary<string, string> { ["Fundament__MasterKey"] = other, ["Fundament__PreviousMasterKeys__0"] = sealedWith },
            "admin", "recover", "--username", "ops2");
        Assert.True(rotated.ExitCode == 0, rotated.Output);
        var (oldKeyExit, oldKeyOutput) = await RunToExitAsync(new Dictionary<string, string>(), "--urls", "http://127.0.0.1:0");
        Assert.Equal(2, oldKeyExit);
        Assert.Contains("not the key this database was sealed with", oldKeyOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADatabaseMigratedByANewerBinary_StopsTheProcess_SayingSo()
    {
        Assert.Equal(0, (await RunToExitAsync(new Dictionary<string, string>(), "admin", "recover", "--username", "ops")).ExitCode);
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_dataDir, "fundament.db")};Pooling=false"))
        {
            await connection.OpenAsync(_ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO fundament_schema_migrations (module, version, name, applied_at) VALUES ('identity', 999, 'from the future', 0)";
            await command.ExecuteNonQueryAsync(_ct);
        }
        var (exitCode, output) = await RunToExitAsync(new Dictionary<string, string>(), "--urls", "http://127.0.0.1:0");
        Assert.Equal(2, exitCode);
        Assert.Contains("The database schema of module 'identity' is at version 999, newer than this binary knows", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminRecover_GivesAnAdministratorBack_WithoutStartingTheServer()
    {
        Assert.Equal(2, (await RunToExitAsync(new Dictionary<string, string>(), "admin", "frobnicate")).ExitCode);
        var (exitCode, output) = await RunToExitAsync(new Dictionary<string, string>(), "admin", "recover", "--username", "ops");
        Assert.True(exitCode == 0, output);
        var password = System.Text.RegularExpressions.Regex.Match(output, "password: ([A-Za-z0-9]{24})").Groups[1].Value;
        Assert.NotEmpty(password);

        // The server, started later on the same data folder, lets "ops" in as an admin.
        var port = FreePort();
        using var process = Start(new Dictionary<string, string>(), "--urls", $"http://127.0.0.1:{port}");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            HttpResponseMessage? login = null;
            for (var i = 0; i < 120 && login is null; i++)
            {
                try
                {
                    login = await http.PostAsJsonAsync("/api/v1/auth/login", new { username = "ops", password }, _ct);
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(500, _ct);
                }
            }
            Assert.Equal(HttpStatusCode.OK, login?.StatusCode);
            var token = JsonNode.Parse(await login!.Content.ReadAsStringAsync(_ct))!["access_token"]!.GetValue<string>();
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/v1/users", _ct)).StatusCode);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(_ct);
        }
    }

    [Fact]
    public async Task FirstStart_OnEmbeddedDefaults_PrintsWhereEverythingIs_AndBecomesReady()
    {
        var port = FreePort();
        using var process = Start(new Dictionary<string, string>(), "--urls", $"http://127.0.0.1:{port}");
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            HttpResponseMessage? ready = null;
            for (var i = 0; i < 120 && ready?.StatusCode != HttpStatusCode.OK; i++)
            {
                try
                {
                    ready = await http.GetAsync("/health/ready", _ct);
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(500, _ct);
                }
            }
            Assert.Equal(HttpStatusCode.OK, ready?.StatusCode);
            var health = JsonNode.Parse(await ready!.Content.ReadAsStringAsync(_ct))!;
            Assert.Equal("Healthy", health["checks"]!["database"]!["status"]!.GetValue<string>());

            for (var i = 0; i < 50 && !output.ToString().Contains("password '", StringComparison.Ordinal); i++)
            {
                await Task.Delay(100, _ct);
            }
            string text;
            lock (output)
            {
                text = output.ToString();
            }
            Assert.Contains($"http://127.0.0.1:{port}", text, StringComparison.Ordinal);
            Assert.Contains(_dataDir, text, StringComparison.Ordinal);
            Assert.Matches("password '[A-Za-z0-9]{24}'", text);
            Assert.True(File.Exists(Path.Combine(_dataDir, "fundament.db")));
            Assert.True(File.Exists(Path.Combine(_dataDir, "master.key")));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(_ct);
        }
    }

    [Fact]
    public async Task JsonLogs_AreOneObjectPerLine_AndLinesInARequest_CarryItsTraceId()
    {
        var port = FreePort();
        using var process = Start(new Dictionary<string, string> { ["Fundament__Logging__Format"] = "json" }, "--urls", $"http://127.0.0.1:{port}");
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is { Length: > 0 } line) { lines.Enqueue(line); } };
        process.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            HttpResponseMessage? login = null;
            for (var i = 0; i < 120 && login is null; i++)
            {
                try
                {
                    login = await http.PostAsJsonAsync("/api/v1/auth/login", new { username = "admin", password = "not-the-password-1" }, _ct);
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(500, _ct);
                }
            }
            Assert.Equal(HttpStatusCode.Unauthorized, login?.StatusCode);
            JsonNode? finished = null;
            for (var i = 0; i < 50 && finished is null; i++)
            {
                await Task.Delay(100, _ct);
                finished = lines.Select(l => JsonNode.Parse(l)!).FirstOrDefault(l => l["Category"]?.GetValue<string>() == "Microsoft.AspNetCore.Hosting.Diagnostics"
                    && l["Message"]!.GetValue<string>().Contains("/api/v1/auth/login - 401", StringComparison.Ordinal));
            }
            Assert.NotNull(finished);
            Assert.Matches("TraceId:[0-9a-f]{32}", finished["Scopes"]!.ToJsonString());
            Assert.All(lines, l => Assert.NotNull(JsonNode.Parse(l)));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(_ct);
        }
    }

    private static int FreePort()
    {
        return Fundament.Tests.Infrastructure.TestPorts.Next();
    }
}
