namespace Fundament.Identity;

/// <summary>The administrator a fresh installation starts with, for the host's start-up banner.</summary>
public interface IBootstrapAdmin
{
    /// <summary>Its username.</summary>
    string Username { get; }

    /// <summary>The password generated for it at this start, once; null when none was generated or it was taken already.</summary>
    string? TakeGeneratedPassword();
}
