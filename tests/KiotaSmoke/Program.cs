// The smoke scenario of issue 13, through a client generated from the committed API description:
// sign in, create a user, put and read a secret, register an instance. Usage: KiotaSmoke <base-url> <admin-password>
using Fundament.KiotaSmoke.Client;
using Fundament.KiotaSmoke.Client.Models;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Abstractions.Serialization;
using Microsoft.Kiota.Http.HttpClientLibrary;

if (args is not [var baseUrl, var adminPassword])
{
    Console.Error.WriteLine("usage: KiotaSmoke <base-url> <admin-password>");
    return 2;
}

FundamentApiClient Client(string? token)
{
    var http = new HttpClient();
    if (token is not null)
    {
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
    }
    return new FundamentApiClient(new HttpClientRequestAdapter(new AnonymousAuthenticationProvider(), httpClient: http) { BaseUrl = baseUrl });
}

void Check(bool condition, string what)
{
    if (!condition)
    {
        throw new InvalidOperationException("smoke check failed: " + what);
    }
    Console.WriteLine("ok: " + what);
}

AppDomain.CurrentDomain.UnhandledException += (_, e) =>
{
    // A problem answer arrives as a generated exception type: say what the server said.
    if (e.ExceptionObject is HttpValidationProblemDetails validation)
    {
        Console.Error.WriteLine($"{validation.Status} {validation.Title}: {string.Join("; ", validation.Errors?.AdditionalData.Select(kv => $"{kv.Key}: {kv.Value}") ?? [])}");
    }
};

var tokens = await Client(null).Api.V1.Auth.Login.PostAsync(new LoginRequest { Username = "admin", Password = adminPassword });
Check(tokens?.AccessToken is { Length: > 0 }, "login returns an access token");
var api = Client(tokens!.AccessToken);

var username = "kiota-" + Guid.NewGuid().ToString("N")[..8];
var user = await api.Api.V1.Users.PostAsync(new CreateUserRequest { Username = username, Password = "Kiota-Smoke-Password-1", Roles = ["guest"] });
Check(user?.Id is { Length: > 0 } && user.Username == username, "create a user");
var fetched = await api.Api.V1.Users[user!.Id!].GetAsync();
Check(fetched?.Username == username, "read the user back");

var path = "kiota/" + Guid.NewGuid().ToString("N")[..8];
var written = await api.Api.V1.Secrets[path].PutAsync(new SecretWriteRequest
{
    Value = new UntypedObject(new Dictionary<string, UntypedNode> { ["password"] = new UntypedString("s3cr3t-from-kiota") }),
});
Check(written?.Version == 1, "put a secret (version 1)");
var read = await api.Api.V1.Secrets[path].GetAsync();
var password = (read?.Value as UntypedObject)?.GetValue().TryGetValue("password", out var node) == true ? (node as UntypedString)?.GetValue() : null;
Check(password == "s3cr3t-from-kiota" && read!.Version == 1, "read the secret back");

var service = "kiota-" + Guid.NewGuid().ToString("N")[..6];
var registered = await api.Api.V1.Registry.Instances.PostAsync(new RegisterRequest
{
    Service = service,
    Address = "127.0.0.1",
    Port = 18080,
    Routes = new UntypedArray([new UntypedObject(new Dictionary<string, UntypedNode> { ["path"] = new UntypedString($"/{service}/{{**rest}}") })]),
});
Check(registered?.InstanceId is { Length: > 0 }, "register an instance");
var instance = await api.Api.V1.Registry.Instances[registered!.InstanceId!].GetAsync();
Check(instance?.Service == service, "read the instance back");
await api.Api.V1.Registry.Instances[registered.InstanceId!].DeleteAsync();
Console.WriteLine("kiota smoke: passed");
return 0;
