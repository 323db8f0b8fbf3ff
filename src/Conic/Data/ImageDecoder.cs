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
    /// Writes <paramref name="box"/> of the image at <paramref name="path"/>, resized to side × side, into
    /// <paramref name="destination"/> (planar, <paramref name="channels"/> of 1 or 3). False when the file could not
    /// be decoded completely (then the destination holds what was decoded, the rest black).
    /// </summary>
    public static bool Decode(string path, CropBox box, int side, int channels, Span<byte> destination)
    {
        using var codec = SKCodec.Create(path);
        if (codec == null)
        {
            destination.Clear();
            return false;
        }
        var full = codec.Info;
        // The region's size in the full image; decode at the smallest supported scale that keeps it at least side px.
        float regionWidth = box.HalfWidth * full.Width, regionHeight = box.HalfHeight * full.Height;
        float needed = Math.Min(1f, Math.Max(side / Math.Max(regionWidth, 1f), side / Math.Max(regionHeight, 1f)));
        var scaled = codec.GetScaledDimensions(needed);
        if (scaled.Width * regionWidth / full.Width < side * 0.999f || scaled.Height * regionHeight / full.Height < side * 0.999f)
            scaled = new SKSizeI(full.Width, full.Height);
        var info = new SKImageInfo(scaled.Width, scaled.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        bool complete = result == SKCodecResult.Success;
        if (!complete && result is not (SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput))
        {
            destination.Clear();
            return false;
        }

        var source = SKRect.Create((box.CentreX - box.HalfWidth + 1) / 2 * scaled.Width, (box.CentreY - box.HalfHeight + 1) / 2 * scaled.Height,
                                   box.HalfWidth * scaled.Width, box.HalfHeight * scaled.Height);
        using var target = new SKBitmap(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        using (var canvas = new SKCanvas(target))
        using (var image = SKImage.FromBitmap(bitmap))
        {
            canvas.Clear(SKColors.Black);
            canvas.DrawImage(image, source, SKRect.Create(side, side), new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }
        var rgba = target.GetPixelSpan();
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
        return complete;
    }
}
