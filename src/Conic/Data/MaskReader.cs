using System.Buffers.Binary;
using SkiaSharp;

namespace Conic.Data;

/// <summary>
/// Reads and writes segmentation masks: PNGs holding one class index per pixel, as 8-bit grayscale or as a palette
/// (VOC's form: the index is the palette entry). SkiaSharp decodes palettes to colours only, so palette masks are
/// decoded to colours and mapped back through the file's own PLTE chunk (read here).
/// </summary>
public static class MaskReader
{
    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The mask's class indices, row by row.</summary>
    public static (byte[] Indices, int Width, int Height) Read(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        if (file.Length < 33 || !file.AsSpan(0, 8).SequenceEqual(PngSignature) || !file.AsSpan(12, 4).SequenceEqual("IHDR"u8))
            throw new ConicException($"{path}: not a PNG file (masks are PNGs of class indices)");
        int width = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(16)), height = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(20));
        int depth = file[24], colourType = file[25];
        bool palette = colourType == 3;
        if (!(palette || colourType == 0 && depth == 8))
            throw new ConicException($"{path}: a {Describe(colourType, depth)} PNG; masks hold one class index per pixel, as 8-bit grayscale or palette PNGs");

        using var codec = SKCodec.Create(path) ?? throw new ConicException($"{path}: not a readable PNG");
        var info = new SKImageInfo(width, height, palette ? SKColorType.Rgba8888 : SKColorType.Gray8, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success) throw new ConicException($"{path}: damaged PNG ({result})");
        var pixels = bitmap.GetPixelSpan();
        if (!palette) return (pixels.ToArray(), width, height);

        var indexOf = PaletteIndices(path, file);
        var indices = new byte[width * height];
        for (int p = 0; p < indices.Length; p++)
        {
            uint colour = BinaryPrimitives.ReadUInt32LittleEndian(pixels.Slice(4 * p, 4));
            if (!indexOf.TryGetValue(colour, out indices[p]))
                throw new ConicException($"{path}: pixel ({p % width}, {p / width}) has a colour outside the palette");
        }
        return (indices, width, height);
    }

    static string Describe(int colourType, int depth) => colourType switch
    {
        0 => $"{depth}-bit grayscale",
        2 => "RGB",
        4 => "grayscale with alpha",
        6 => "RGBA",
        _ => $"colour type {colourType}",
    };

    /// <summary>RGBA (as read little-endian from Rgba8888 pixels) of each palette entry to its index; tRNS sets alpha.</summary>
    static Dictionary<uint, byte> PaletteIndices(string path, byte[] file)
    {
        byte[]? palette = null, alpha = null;
        for (int at = 8; at + 8 <= file.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            if (length < 0 || at + 12 + length > file.Length) break;
            var type = file.AsSpan(at + 4, 4);
            if (type.SequenceEqual("PLTE"u8)) palette = file.AsSpan(at + 8, length).ToArray();
            else if (type.SequenceEqual("tRNS"u8)) alpha = file.AsSpan(at + 8, length).ToArray();
            else if (type.SequenceEqual("IDAT"u8)) break;
            at += 12 + length;
        }
        if (palette == null) throw new ConicException($"{path}: palette PNG without a PLTE chunk");
        var indexOf = new Dictionary<uint, byte>();
        for (int i = 0; i < palette.Length / 3; i++)
        {
            byte a = alpha != null && i < alpha.Length ? alpha[i] : (byte)255;
            uint colour = palette[3 * i] | (uint)palette[3 * i + 1] << 8 | (uint)palette[3 * i + 2] << 16 | (uint)a << 24;
            // Palettes padded to 256 entries repeat black: a repeated colour reads as its first (lowest) index.
            indexOf.TryAdd(colour, (byte)i);
        }
        return indexOf;
    }

    /// <summary>Writes class indices (or a grayscale image) as an 8-bit grayscale PNG, atomically.</summary>
    public static void Write(string path, ReadOnlySpan<byte> indices, int width, int height)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        indices.CopyTo(bitmap.GetPixelSpan());
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        Runtime.AtomicFile.Write(path, stream => encoded.SaveTo(stream));
    }
}
