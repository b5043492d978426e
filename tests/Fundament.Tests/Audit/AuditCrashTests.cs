using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Audit;

/// <summary>
/// The real <c>fundament</c> process under a concurrent load of mixed audited actions, killed with
/// SIGKILL mid-load: after a restart the chain verifies and every action that was answered has its entry.
/// Secret writes are audited in their unit of work (pending, then linked); secret reads and failed
/// logins on their own (group commit, chained directly).
/// </summary>
public sealed class AuditCrashTests : IDisposable
{
    private const string Password = "Crash-Test-Password-2026";
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public void Dispose()
    {
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, true);
        }
    }

    [Fact]
    public Task Sqlite_KillDuringLoad_LosesNoAnsweredEntry() => KillDuringLoadAsync(new Dictionary<string, string>());

    [Fact]
    public async Task Postgres_KillDuringLoad_LosesNoAnsweredEntry()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        var connectionString = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
        try
        {
            await KillDuringLoadAsync(new Dictionary<string, string>
            {
                ["Fundament__Storage__Provider"] = "postgres",
                ["Fundament__Identity__Issuer"] = "http://127.0.0.1",
                ["ConnectionStrings__Fundament"] = connectionString,
                ["Fundament__MasterKey"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
            });
        }
        finally
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, connectionString);
        }
    }

    private async Task KillDuringLoadAsync(Dictionary<string, string> environment)
    {
        var port = TestPorts.Next();
        var answered = new ConcurrentBag<(string Action, string Key)>();
        using (var first = Start(environment, port))
        {
            try
            {
                using var admin = await ChildProcess.SignedInAsync(port, Password, _ct);
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(_ct);
                var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
                {
                    using var anonymous = new HttpClient { BaseAddress = admin.BaseAddress };
                    for (var i = 0; !stop.IsCancellationRequested; i++)
                    {
                        try
                        {
                            var path = $"crash/w{w}-{i}";
                            if ((await admin.PutAsJsonAsync($"/api/v1/secrets/{path}", new { value = new { n = i } }, stop.Token)).IsSuccessStatusCode)
                            {
                                answered.Add(("secret.write", $"secret:{path}"));
                            }
                            if ((await admin.GetAsync($"/api/v1/secrets/{path}", stop.Token)).StatusCode == HttpStatusCode.OK)
                            {
                                answered.Add(("secret.read", $"secret:{path}"));
                            }
                            var ghost = $"ghost-w{w}-{i}";
                            var login = await anonymous.PostAsJsonAsync("/api/v1/auth/login", new { username = ghost, password = "not-the-password" }, stop.Token);
                            if (login.StatusCode == HttpStatusCode.Unauthorized)
                            {
                                answered.Add(("auth.login", ghost));
                            }
                        }
                        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
                        {
                            return; // The process is gone: what was answered before is what counts.
                        }
                    }
                }, CancellationToken.None)).ToList();
                while (answered.Count < 300)
                {
                    await Task.Delay(20, _ct);
                }
                // SIGKILL while every worker has a request in flight.
                first.Kill(entireProcessTree: true);
                await first.WaitForExitAsync(_ct);
                await stop.CancelAsync();
                await Task.WhenAll(workers);
            }
            finally
            {
                if (!first.HasExited)
                {
                    first.Kill(entireProcessTree: true);
                }
            }
        }

        using var second = Start(environment, port);
        try
        {
            using var admin = await ChildProcess.SignedInAsync(port, Password, _ct);
            var verify = await admin.GetFromJsonAsync<JsonNode>("/api/v1/audit/verify", _ct);
            Assert.True(verify!["valid"]!.GetValue<bool>(), verify.ToJsonString());

            var recorded = new HashSet<(string, string)>();
            var url = "/api/v1/audit?limit=500";
            while (true)
            {
                var page = (await admin.GetFromJsonAsync<JsonNode>(url, _ct))!;
                foreach (var entry in page["items"]!.AsArray())
                {
                    var action = entry!["action"]!.GetValue<string>();
                    recorded.Add((action, action == "auth.login" ? entry["actorName"]?.GetValue<string>() ?? "" : entry["target"]?.GetValue<string>() ?? ""));
                }
                if (page["next"] is not JsonValue next)
                {
                    break;
                }
                url = $"/api/v1/audit?limit=500&before={next.GetValue<long>()}";
            }
            var lost = answered.Where(a => !recorded.Contains(a)).ToList();
            Assert.True(lost.Count == 0, $"{lost.Count} of {answered.Count} answered actions have no audit entry, e.g. {string.Join(", ", lost.Take(5))}");
            Assert.True(answered.Count >= 300);
        }
        finally
        {
            second.Kill(entireProcessTree: true);
            await second.WaitForExitAsync(_ct);
        }
    }

    private Process Start(Dictionary<string, string> environment, int port) =>
        ChildProcess.StartDotnet(Path.Combine(AppContext.BaseDirectory, "fundament.dll"),
            new Dictionary<string, string>
            {
                ["Fundament__DataDir"] = _dataDir,
                ["Fundament__Identity__PasswordHashIterations"] = "10000",
                ["Fundament__Identity__BootstrapAdminPassword"] = Password,
                ["Fundament__Gateway__Urls"] = $"http://127.0.0.1:{TestPorts.Next()}",
                ["Logging__LogLevel__Default"] = "Warning",
            }.Concat(environment),
            ["--urls", $"http://127.0.0.1:{port}"], workingDirectory: Path.GetTempPath());
}
