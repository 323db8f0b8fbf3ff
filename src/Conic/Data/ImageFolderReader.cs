using SkiaSharp;

namespace Conic.Data;

/// <summary>
/// Reads a folder of PNG/JPEG images of any size with SkiaSharp. Each image is resized so that its shorter side is
/// <c>imageSize</c>, then centre-cropped to a square. When every image sits in a first-level subfolder, the
/// subfolder names are the classes (labels); otherwise the images are unlabelled. Grayscale when every image is.
/// Symbolic links are followed, each folder once (a link back up the tree is not a loop of copies); images that
/// end early or hold damaged data are left out and listed in <see cref="ImageDataset.Notes"/>.
/// </summary>
public static class ImageFolderReader
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif" };

    public static bool ContainsImages(string folder) => ImageFiles(folder).Any();

    /// <summary>
    /// Reads every image under <paramref name="folder"/>. With <paramref name="classNames"/> (a test split read after
    /// its train split) labels are numbered by those names, and a class folder not among them is an error.
    /// </summary>
    /// <param name="log">Where a count of the files found and a progress line per twentieth of the decoding go (large folders take minutes).</param>
    public static ImageDataset Read(string folder, int imageSize, IReadOnlyList<string>? classNames = null, TextWriter? log = null)
    {
        if (imageSize < 8) throw new ConicException($"image size {imageSize} is too small (at least 8 px)");
        var files = ImageFiles(folder).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new ConicException($"{folder}: no PNG or JPEG images found");
        long pixelBytes = files.LongLength * 3 * imageSize * imageSize;
        string what = $"{folder}: {files.Length} images of {imageSize}x{imageSize} px (--image-size)";
        if (pixelBytes > Array.MaxLength)
            throw new ConicException($"{what}: {Runtime.MemoryEstimate.Format(pixelBytes)} of pixels, more than the 2 GiB an in-memory data set holds; use a smaller --image-size");
        // The decoded RGBA bitmaps, then the pixel array.
        Runtime.MemoryEstimate.CheckFits(pixelBytes / 3 * 7, what);

        log?.WriteLine($"{folder}: {files.Length} images found; decoding");
        int done = 0, step = Math.Max(1, files.Length / 20);
        var decoded = new SKBitmap?[files.Length];
        bool[] gray = new bool[files.Length];
        try
        {
            Parallel.For(0, files.Length, i =>
            {
                using var codec = SKCodec.Create(files[i]) ?? throw new ConicException($"{files[i]}: not a readable image");
                gray[i] = codec.Info.ColorType == SKColorType.Gray8;
                using var full = new SKBitmap(codec.Info.WithColorType(SKColorType.Rgba8888).WithAlphaType(SKAlphaType.Unpremul));
                var result = codec.GetPixels(full.Info, full.GetPixels());
                // Truncated or damaged data decodes partly: such files are listed below, not read as half images.
                if (result is SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput) return;
                if (result != SKCodecResult.Success) throw new ConicException($"{files[i]}: could not decode the image ({result})");
                decoded[i] = ResizeAndCenterCrop(full, imageSize);
                int finished = Interlocked.Increment(ref done);
                if (log != null && finished % step == 0 && finished < files.Length) lock (log) log.WriteLine($"decoded {finished}/{files.Length} images");
            });
        }
        catch (AggregateException e) when (e.InnerException is ConicException inner)
        {
            throw inner;
        }
        var truncated = files.Where((_, i) => decoded[i] == null).ToArray();
        if (truncated.Length == files.Length) throw new ConicException($"{folder}: all {files.Length} images are truncated or damaged (e.g. {truncated[0]})");
        var notes = truncated.Length == 0 ? [] : new[]
        {
            $"{truncated.Length} truncated or damaged image{(truncated.Length == 1 ? "" : "s")} left out of {folder}: " +
            string.Join(", ", truncated.Take(10).Select(f => Path.GetRelativePath(folder, f))) + (truncated.Length > 10 ? ", ..." : ""),
        };
        bool[] kept = decoded.Select(d => d != null).ToArray();
        files = files.Where((_, i) => kept[i]).ToArray();
        gray = gray.Where((_, i) => kept[i]).ToArray();
        decoded = decoded.Where(d => d != null).ToArray();

        string?[] topFolders = files.Select(f => FirstFolder(folder, f)).ToArray();
        bool labelled = topFolders.All(t => t != null);
        if (labelled && classNames != null)
        {
            var unknown = topFolders.Distinct().Where(t => !classNames.Contains(t!)).ToArray();
            if (unknown.Length > 0)
                throw new ConicException($"{folder}: class folder '{unknown[0]}' is not among the training classes ({string.Join(", ", classNames)})");
        }
        classNames = labelled ? classNames ?? topFolders.Select(t => t!).Distinct().Order(StringComparer.Ordinal).ToArray() : null;
        int[]? labels = labelled ? topFolders.Select(t => classNames!.ToList().IndexOf(t!)).ToArray() : null;

        int channels = gray.All(g => g) ? 1 : 3;
        int plane = imageSize * imageSize;
        var pixels = new byte[(long)files.Length * channels * plane];
        Parallel.For(0, files.Length, i =>
        {
            using var bitmap = decoded[i]!;
            long baseOffset = (long)i * channels * plane;
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
        return new ImageDataset(pixels, files.Length, channels, imageSize, imageSize, labels, folder, names, classNames) { Notes = notes };
    }

    /// <summary>
    /// Image files under <paramref name="folder"/>, entering each real folder once: the tree without links first, then
    /// the folders that symbolic links lead to and that were not reached already (so a link to a sibling class does
    /// not relabel its images, and a link to an ancestor ends).
    /// </summary>
    static IEnumerable<string> ImageFiles(string folder)
    {
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var links = new Queue<string>();
        var pending = new Stack<string>([folder]);
        while (true)
        {
            while (pending.Count > 0)
            {
                string current = pending.Pop();
                if (!visited.Add(RealPath(current))) continue;
                foreach (string file in Directory.EnumerateFiles(current).Where(IsImage)) yield return file;
                foreach (string sub in Directory.EnumerateDirectories(current))
                    if (new DirectoryInfo(sub).LinkTarget != null) links.Enqueue(sub); else pending.Push(sub);
            }
            if (!links.TryDequeue(out var link)) yield break;
            pending.Push(link);
        }
    }

    /// <summary>The folder's path with every symbolic link resolved (libc realpath; the full path where there is none).</summary>
    static string RealPath(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            IntPtr resolved = NativeMethods.realpath(path, IntPtr.Zero);
            if (resolved != IntPtr.Zero)
            {
                string real = System.Runtime.InteropServices.Marshal.PtrToStringUTF8(resolved)!;
                NativeMethods.free(resolved);
                return real;
            }
        }
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
    }

    static class NativeMethods
    {
        [System.Runtime.InteropServices.DllImport("libc", CharSet = System.Runtime.InteropServices.CharSet.Ansi)]
        public static extern IntPtr realpath(string path, IntPtr resolved);

        [System.Runtime.InteropServices.DllImport("libc")]
        public static extern void free(IntPtr pointer);
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
