using SkiaSharp;

namespace Conic.Data;

/// <summary>
/// A region of an image as fractions of its sides: centre in [-1, 1] (−1 the left or top edge) and half-extents, so
/// that the region spans [CentreX − HalfWidth, CentreX + HalfWidth] (the coordinates of an affine grid sample).
/// </summary>
public readonly record struct CropBox(float CentreX, float CentreY, float HalfWidth, float HalfHeight)
{
    /// <summary>The largest centred square (the evaluation view).</summary>
    public static CropBox CentreSquare(int width, int height) =>
        width >= height ? new(0, 0, (float)height / width, 1) : new(0, 0, 1, (float)width / height);
}

/// <summary>What a look at a file's header found: its size and colours, or why it cannot be used.</summary>
public readonly record struct ImageProbe(int Width, int Height, bool Gray, string? Problem);

/// <summary>
/// Decodes one image file with SkiaSharp into planar bytes [C, side, side]: a region of the full image, resized.
/// JPEGs are decoded at 1/2, 1/4 or 1/8 scale (libjpeg-turbo's DCT scaling) when the region still has at least the
/// output's resolution there, which makes crops of large photos several times cheaper.
/// </summary>
public static class ImageDecoder
{
    /// <summary>The largest image decoded: 1 GiB as RGBA. A header claiming more is a damaged or hostile file, not a photo to train on.</summary>
    public const long MaxPixels = 1L << 28;

    /// <summary>
    /// Reads the header, and the file's last bytes for JPEG and PNG, which every complete file ends with (an end-of-image
    /// marker, an IEND chunk): an empty file, a file that is not an image and a truncated one are found without decoding.
    /// </summary>
    public static ImageProbe Probe(string path)
    {
        long length = new FileInfo(path).Length;
        if (length == 0) return new(0, 0, false, "empty file");
        using var codec = SKCodec.Create(path);
        if (codec == null) return new(0, 0, false, "not a readable image");
        var info = codec.Info;
        if (info.Width < 1 || info.Height < 1) return new(0, 0, false, "no pixels");
        if ((long)info.Width * info.Height > MaxPixels)
            return new(0, 0, false, $"its header claims {info.Width}x{info.Height} px, more than the {MaxPixels / 1_000_000} megapixels Conic decodes");
        string? truncated = codec.EncodedFormat switch
        {
            SKEncodedImageFormat.Jpeg when !EndsWith(path, length, [0xFF, 0xD9]) => "truncated (no JPEG end marker)",
            SKEncodedImageFormat.Png when !EndsWith(path, length, "IEND"u8.ToArray(), trailing: 4) => "truncated (no PNG end chunk)",
            _ => null,
        };
        return new(info.Width, info.Height, info.ColorType == SKColorType.Gray8, truncated);
    }

    static bool EndsWith(string path, long length, byte[] marker, int trailing = 0)
    {
        if (length < marker.Length + trailing) return false;
        using var stream = File.OpenRead(path);
        stream.Seek(-(marker.Length + trailing), SeekOrigin.End);
        var tail = new byte[marker.Length];
        stream.ReadExactly(tail);
        return tail.AsSpan().SequenceEqual(marker);
    }

    /// <summary>
    /// Decodes the image at <paramref name="path"/> once and writes each region <paramref name="crops"/>[v].Box, resized
    /// to Side × Side, into <paramref name="crops"/>[v].Destination (planar, <paramref name="channels"/> of 1 or 3).
    /// False when the file could not be decoded completely (then the crops hold what was decoded, the rest black).
    /// </summary>
    public static bool Decode(string path, int channels, params ReadOnlySpan<Crop> crops)
    {
        using var codec = SKCodec.Create(path);
        float needed = 0;
        if (codec != null)
            foreach (var crop in crops)
                needed = Math.Max(needed, Math.Max(crop.Side / Math.Max(crop.Box.HalfWidth * codec.Info.Width, 1f),
                                                   crop.Side / Math.Max(crop.Box.HalfHeight * codec.Info.Height, 1f)));
        var (bitmap, complete) = DecodeAtLeast(codec, needed);
        using (bitmap)
        {
            foreach (var crop in crops)
                if (bitmap == null) crop.Destination.Span.Clear(); else Render(bitmap, crop, channels);
        }
        return complete;
    }

    /// <summary>
    /// The image at <paramref name="path"/> with its shorter side at most <paramref name="maxSide"/>, as interleaved
    /// bytes of <paramref name="channels"/> per pixel (the cache's form); null when it cannot be decoded at all.
    /// </summary>
    public static (byte[] Pixels, int Width, int Height, bool Complete)? Resized(string path, int maxSide, int channels)
    {
        using var codec = SKCodec.Create(path);
        if (codec == null) return null;
        var (bitmap, complete) = DecodeAtLeast(codec, Math.Min(1f, (float)maxSide / Math.Min(codec.Info.Width, codec.Info.Height)));
        if (bitmap == null) return null;
        using (bitmap)
        {
            double scale = Math.Min(1.0, (double)maxSide / Math.Min(bitmap.Width, bitmap.Height));
            int width = Math.Max(1, (int)Math.Round(bitmap.Width * scale)), height = Math.Max(1, (int)Math.Round(bitmap.Height * scale));
            using var resized = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            bitmap.ScalePixels(resized, new SKSamplingOptions(SKFilterMode.Linear, scale < 0.5 ? SKMipmapMode.Linear : SKMipmapMode.None));
            var rgba = resized.GetPixelSpan();
            var pixels = new byte[width * height * channels];
            for (int p = 0; p < width * height; p++)
                for (int c = 0; c < channels; c++) pixels[p * channels + c] = rgba[4 * p + c];
            return (pixels, width, height, complete);
        }
    }

    /// <summary>Writes the <paramref name="crops"/> of an image stored as interleaved bytes (a cache entry), as <see cref="Decode"/> does.</summary>
    public static void Render(ReadOnlySpan<byte> stored, int width, int height, int storedChannels, int channels, params ReadOnlySpan<Crop> crops)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var rgba = bitmap.GetPixelSpan();
        for (int p = 0; p < width * height; p++)
        {
            byte r = stored[p * storedChannels];
            rgba[4 * p] = r;
            rgba[4 * p + 1] = storedChannels == 3 ? stored[p * 3 + 1] : r;
            rgba[4 * p + 2] = storedChannels == 3 ? stored[p * 3 + 2] : r;
            rgba[4 * p + 3] = 255;
        }
        foreach (var crop in crops) Render(bitmap, crop, channels);
    }

    /// <summary>
    /// The decoded image (of a null codec: none) at the smallest supported scale (JPEG: k/8) that keeps <paramref name="needed"/> of its size;
    /// whether it decoded completely. A truncated or damaged file gives what decoded (the rest black); null: nothing.
    /// </summary>
    static (SKBitmap? Bitmap, bool Complete) DecodeAtLeast(SKCodec? codec, float needed)
    {
        if (codec == null) return (null, false);
        var full = codec.Info;
        var scaled = new SKSizeI(full.Width, full.Height);
        for (int eighths = 1; eighths < 8; eighths++)
        {
            // JPEG decodes at k/8 scale; other formats answer with the full size.
            var candidate = codec.GetScaledDimensions(eighths / 8f);
            if (candidate.Width >= full.Width * needed && candidate.Height >= full.Height * needed)
            {
                scaled = candidate;
                break;
            }
        }
        var info = new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result is SKCodecResult.Success or SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput)
            return (bitmap, result == SKCodecResult.Success);
        bitmap.Dispose();
        return (null, false);
    }

    static void Render(SKBitmap bitmap, Crop crop, int channels)
    {
        var box = crop.Box;
        int side = crop.Side;
        int left = (int)Math.Round((box.CentreX - box.HalfWidth + 1) / 2 * bitmap.Width), top = (int)Math.Round((box.CentreY - box.HalfHeight + 1) / 2 * bitmap.Height);
        int width = Math.Clamp((int)Math.Round(box.HalfWidth * bitmap.Width), 1, bitmap.Width - Math.Clamp(left, 0, bitmap.Width - 1));
        int height = Math.Clamp((int)Math.Round(box.HalfHeight * bitmap.Height), 1, bitmap.Height - Math.Clamp(top, 0, bitmap.Height - 1));
        using var region = new SKBitmap();
        bitmap.ExtractSubset(region, SKRectI.Create(Math.Clamp(left, 0, bitmap.Width - 1), Math.Clamp(top, 0, bitmap.Height - 1), width, height));
        // Mipmaps only where the region shrinks by more than half: building them costs more than the resize itself.
        var mipmaps = width > 2 * side || height > 2 * side ? SKMipmapMode.Linear : SKMipmapMode.None;
        using var target = new SKBitmap(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        region.ScalePixels(target, new SKSamplingOptions(SKFilterMode.Linear, mipmaps));
        var rgba = target.GetPixelSpan();
        var destination = crop.Destination.Span;
        int plane = side * side;
        for (int p = 0; p < plane; p++)
        {
            destination[p] = rgba[4 * p];
            if (channels == 3)
            {
                destination[plane + p] = rgba[4 * p + 1];
                destination[2 * plane + p] = rgba[4 * p + 2];
            }
        }
    }
}

/// <summary>One region to cut from a decoded image, its output side, and where its planar bytes go.</summary>
public readonly record struct Crop(CropBox Box, int Side, Memory<byte> Destination);
