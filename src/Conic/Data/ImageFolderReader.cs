using SkiaSharp;

namespace Conic.Data;

/// <summary>
/// Reads a folder of PNG/JPEG images of any size with SkiaSharp. Each image is resized so that its shorter side is
/// <c>imageSize</c>, then centre-cropped to a square. When every image sits in a first-level subfolder, the
/// subfolder names are the classes (labels); otherwise the images are unlabelled. Grayscale when every image is.
/// </summary>
public static class ImageFolderReader
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif" };

    public static bool ContainsImages(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Any(IsImage);

    public static ImageDataset Read(string folder, int imageSize)
    {
        if (imageSize < 8) throw new ConicException($"--image-size: {imageSize} is too small (at least 8)");
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(IsImage)
                             .Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new ConicException($"{folder}: no PNG or JPEG images found");

        string?[] topFolders = files.Select(f => FirstFolder(folder, f)).ToArray();
        bool labelled = topFolders.All(t => t != null);
        string[]? classNames = labelled ? topFolders.Select(t => t!).Distinct().Order(StringComparer.Ordinal).ToArray() : null;
        int[]? labels = labelled ? topFolders.Select(t => Array.IndexOf(classNames!, t)).ToArray() : null;

        var decoded = new SKBitmap[files.Length];
        bool[] gray = new bool[files.Length];
        try
        {
            Parallel.For(0, files.Length, i =>
            {
                using var codec = SKCodec.Create(files[i]) ?? throw new ConicException($"{files[i]}: not a readable image");
                gray[i] = codec.Info.ColorType == SKColorType.Gray8;
                using var full = SKBitmap.Decode(codec) ?? throw new ConicException($"{files[i]}: could not decode the image");
                decoded[i] = ResizeAndCenterCrop(full, imageSize);
            });
        }
        catch (AggregateException e) when (e.InnerException is ConicException inner)
        {
            throw inner;
        }

        int channels = gray.All(g => g) ? 1 : 3;
        int plane = imageSize * imageSize;
        var pixels = new byte[files.Length * channels * plane];
        Parallel.For(0, files.Length, i =>
        {
            using var bitmap = decoded[i];
            int baseOffset = i * channels * plane;
            for (int y = 0; y < imageSize; y++)
            for (int x = 0; x < imageSize; x++)
            {
                SKColor color = bitmap.GetPixel(x, y);
                int p = y * imageSize + x;
                if (channels == 1)
                {
                    pixels[baseOffset + p] = color.Red;
                }
                else
                {
                    pixels[baseOffset + p] = color.Red;
                    pixels[baseOffset + plane + p] = color.Green;
                    pixels[baseOffset + 2 * plane + p] = color.Blue;
                }
            }
        });
        string[] names = files.Select(f => Path.GetRelativePath(folder, f)).ToArray();
        return new ImageDataset(pixels, files.Length, channels, imageSize, imageSize, labels, folder, names, classNames);
    }

    static SKBitmap ResizeAndCenterCrop(SKBitmap source, int size)
    {
        double scale = (double)size / Math.Min(source.Width, source.Height);
        int width = Math.Max(size, (int)Math.Round(source.Width * scale));
        int height = Math.Max(size, (int)Math.Round(source.Height * scale));
        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var target = new SKBitmap(info);
        using var canvas = new SKCanvas(target);
        canvas.Clear(SKColors.Black);
        using var image = SKImage.FromBitmap(source);
        var destination = SKRect.Create((size - width) / 2f, (size - height) / 2f, width, height);
        canvas.DrawImage(image, destination, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        return target;
    }

    static bool IsImage(string path) => Extensions.Contains(Path.GetExtension(path));

    static string? FirstFolder(string root, string file)
    {
        string relative = Path.GetRelativePath(root, file);
        int separator = relative.IndexOf(Path.DirectorySeparatorChar);
        return separator < 0 ? null : relative[..separator];
    }
}
