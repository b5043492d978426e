using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Fundament.Tests.Infrastructure;

/// <summary>The server on a real port (Kestrel), so the client SDK talks to it as a service would.</summary>
public sealed class KestrelFundamentFactory : FundamentFactory
{
    public KestrelFundamentFactory() => UseKestrel(0);

    /// <summary>More settings (a transport, say), for suites that need them.</summary>
    public IEnumerable<KeyValuePair<string, string>> Extra { get; init; } = [];

    protected override IEnumerable<KeyValuePair<string, string>> Settings() => Extra;

    public Uri Address
    {
        get
        {
            StartServer();
            return new Uri(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        }
    }

    /// <summary>
    /// A service's host builder with the SDK (<c>AddFundamentClient</c>, no registration, no
    /// configuration provider), as a new client with role service, on the factory's clock, after
    /// <paramref name="grant"/> gave that client what it needs (<c>client:&lt;id&gt;</c> is passed in).
    /// </summary>
    public async Task<HostApplicationBuilder> ServiceBuilderAsync(HttpClient admin, string name, Func<string, object> grant, string grantPath)
    {
        var ct = TestContext.Current.CancellationToken;
        var address = Address;
        var created = await (await admin.PostAsJsonAsync("/api/v1/clients", new { name, roles = new[] { "service" } }, ct)).JsonAsync();
        var clientId = created["client_id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsJsonAsync(grantPath, grant($"client:{clientId}"), ct)).StatusCode);
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton<TimeProvider>(Time);
        builder.AddFundamentClient(o =>
        {
            o.Url = address;
            o.ClientId = clientId;
            o.ClientSecret = created["client_secret"]!.GetValue<string>();
            o.Register = false;
            o.Configuration = false;
        });
        return builder;
    }
}
