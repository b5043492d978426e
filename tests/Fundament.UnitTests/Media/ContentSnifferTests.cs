using System.Text;
using Fundament.Media;

namespace Fundament.UnitTests.Media;

public sealed class ContentSnifferTests
{
    private static byte[] Head(params byte[] start) => [.. start, .. new byte[ContentSniffer.HeaderLength - start.Length]];

    [Fact]
    public void Jpeg_Png_Gif_AreImages_ByTheirMagicBytes()
    {
        Assert.Equal("image/jpeg", ContentSniffer.Sniff(Head(0xFF, 0xD8, 0xFF, 0xE0))?.Mime);
        Assert.Equal("image/png", ContentSniffer.Sniff(Head(0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A))?.Mime);
        Assert.Equal("image/gif", ContentSniffer.Sniff(Head("GIF89a"u8.ToArray()))?.Mime);
    }

    [Theory]
    [InlineData("<!DOCTYPE html><html><script>alert(1)</script>")]
    [InlineData("<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>")]
    [InlineData("#!/bin/sh\nrm -rf /")]
    [InlineData("PK\u0003\u0004 an archive")]
    public void WhatMediaCannotProcess_IsNotRecognised(string content)
    {
        var bytes = Encoding.UTF8.GetBytes(content);

        Assert.Null(ContentSniffer.Sniff(Head(bytes.Take(ContentSniffer.HeaderLength).ToArray())));
    }

    [Fact]
    public void TooShortToTell_IsNotRecognised() => Assert.Null(ContentSniffer.Sniff([0xFF]));
}
