using Fundament.Identity;
using Fundament.Identity.Passwords;
using Microsoft.Extensions.Options;

namespace Fundament.UnitTests.Identity.Passwords;

public sealed class PasswordPolicyTests
{
    private readonly PasswordPolicy _policy = new(Options.Create(new IdentityOptions { PasswordMinLength = 12 }));

    [Theory]
    [InlineData("correct horse battery staple")]
    [InlineData("Tr0ub4dor&3-extended")]
    public void StrongPasswords_Pass(string password) => Assert.Null(_policy.Check(password, "alice"));

    [Theory]
    [InlineData("", "required")]
    [InlineData("short1!", "at least 12")]
    [InlineData("aaaaaaaaaaaaaaaa", "repetitive")]
    [InlineData("my-alice-password", "username")]
    [InlineData("password1234", "commonly used")]
    [InlineData("sunshine2024!!", "commonly used")]
    public void WeakPasswords_AreRefused_SayingWhy(string password, string reason) =>
        Assert.Contains(reason, _policy.Check(password, "alice"), StringComparison.Ordinal);

    [Fact]
    public void OverlongPasswords_AreRefused() =>
        Assert.Contains("at most", _policy.Check(new string('x', 100) + new string('y', 200), null), StringComparison.Ordinal);
}
