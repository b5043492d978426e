using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Fundament.Tests.Infrastructure;

namespace Fundament.Tests.Vault;

/// <summary>
/// The operator's procedure: restart with the new key as MasterKey and the old one in
/// PreviousMasterKeys, re-wrap online, restart with only the new key. Everything stays readable:
/// secrets, token signing keys, the audit chain.
/// </summary>
public abstract class MasterKeyRotationTests
{
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    protected abstract KeyValuePair<string, string>[] StorageSettings { get; }

    private ConfiguredFundamentFactory Start(string masterKey, params string[] previous)
    {
        var settings = StorageSettings.ToList();
        settings.Add(new("Fundament:MasterKey", masterKey));
        for (var i = 0; i < previous.Length; i++)
        {
            settings.Add(new($"Fundament:PreviousMasterKeys:{i}", previous[i]));
        }
        return new ConfiguredFundamentFactory(settings);
    }

    [Fact]
    public async Task Rotation_RewrapsEverything_AndTheOldKeyCanThenBeDropped()
    {
        var oldKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var newKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

        await using (var before = Start(oldKey))
        {
            using var admin = await before.AdminAsync();
            for (var i = 0; i < 5; i++)
            {
                (await admin.PutAsJsonAsync($"/api/v1/secrets/rotation/s{i}", new { value = $"value-{i}" }, _ct)).EnsureSuccessStatusCode();
            }
        }

        await using (var during = Start(newKey, oldKey))
        {
            using var admin = await during.AdminAsync();
            // One corrupted item is reported, not fatal: everything else still moves to the new key.
            (await admin.PutAsJsonAsync("/api/v1/secrets/rotation/corrupt", new { value = "x" }, _ct)).EnsureSuccessStatusCode();
            await using (var connection = await during.Services.GetRequiredService<Fundament.Core.Storage.IDatabase>().OpenAsync(_ct))
            {
                await Dapper.SqlMapper.ExecuteAsync(connection, "UPDATE vault_secret_versions SET ciphertext = @junk WHERE path = 'rotation/corrupt'", new { junk = new byte[] { 1, 2, 3 } });
                var old = await Dapper.SqlMapper.ExecuteScalarAsync<byte[]>(connection, "SELECT ciphertext FROM vault_secret_versions WHERE path = 'rotation/s0'");
                var broken = (byte[])old!.Clone();
                broken[20] ^= 0xFF;
                await Dapper.SqlMapper.ExecuteAsync(connection, "UPDATE vault_secret_versions SET ciphertext = @broken WHERE path = 'rotation/corrupt'", new { broken });
            }
            var report = await (await admin.PostAsync("/api/v1/vault/rotate-master-key", null, _ct)).JsonAsync();
            Assert.True(report["rewrapped"] is not null, report.ToJsonString());
            Assert.Equal(5, report["rewrapped"]!["vault secrets"]!.GetValue<int>());
            Assert.Equal(1, report["failed"]!["vault secrets"]!.GetValue<int>());
            Assert.Equal(1, report["rewrapped"]!["audit chain key"]!.GetValue<int>());
            Assert.True(report["rewrapped"]!["token signing keys"]!.GetValue<int>() >= 1);
            Assert.Single(report["previousKeyIds"]!.AsArray());
            var again = await (await admin.PostAsync("/api/v1/vault/rotate-master-key", null, _ct)).JsonAsync();
            Assert.True(again["rewrapped"] is not null, again.ToJsonString());
            Assert.Equal(0, again["rewrapped"]!["vault secrets"]!.GetValue<int>());
        }

        await using var after = Start(newKey);
        using var afterAdmin = await after.AdminAsync();
        for (var i = 0; i < 5; i++)
        {
            var secret = await (await afterAdmin.GetAsync($"/api/v1/secrets/rotation/s{i}", _ct)).JsonAsync();
            Assert.Equal($"value-{i}", secret["value"]!.GetValue<string>());
        }
        var verify = await (await afterAdmin.GetAsync("/api/v1/audit/verify", _ct)).JsonAsync();
        Assert.True(verify["valid"]!.GetValue<bool>());
    }
}

public sealed class SqliteMasterKeyRotationTests : MasterKeyRotationTests, IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "fundament-tests", Guid.NewGuid().ToString("N"));

    protected override KeyValuePair<string, string>[] StorageSettings => [new("Fundament:DataDir", _dataDir)];

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, true);
        }
    }
}

public sealed class PostgresMasterKeyRotationTests : MasterKeyRotationTests, IAsyncLifetime
{
    private string? _connectionString;

    protected override KeyValuePair<string, string>[] StorageSettings =>
        [new("Fundament:Storage:Provider", "postgres"), new("ConnectionStrings:Fundament", _connectionString!)];

    public async ValueTask InitializeAsync()
    {
        Assert.SkipUnless(PostgresFundamentFactory.Available, $"set {PostgresFundamentFactory.Variable} to run against PostgreSQL");
        _connectionString = await TestDatabases.CreateAsync(PostgresFundamentFactory.AdminConnectionString!);
    }

    public async ValueTask DisposeAsync()
    {
        if (_connectionString is not null)
        {
            await TestDatabases.DropAsync(PostgresFundamentFactory.AdminConnectionString!, _connectionString);
        }
    }
}
