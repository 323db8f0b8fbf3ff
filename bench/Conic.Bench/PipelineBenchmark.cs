using System.Diagnostics;
using Conic.Data;
using Conic.Models;
using Conic.Runtime;
using SkiaSharp;
using static TorchSharp.torch;

namespace Conic.Bench;

/// <summary>
/// The streaming image pipeline on a folder of photos: a generator for a test collection (class subfolders of JPEGs of
/// varied sizes, seeded), and the time to scan it, to the first batch, and the decode + augment speed with peak memory.
/// </summary>
static class PipelineBenchmark
{
    /// <summary>
    /// Writes <paramref name="count"/> JPEGs of 120-400 px per side into <paramref name="classes"/> subfolders: each class
    /// a colour and a shape, drawn at random places and sizes on a noisy background, so that crops differ and classes do.
    /// </summary>
    public static void MakePhotos(string folder, int count, int classes, TextWriter output)
    {
        var clock = Stopwatch.StartNew();
        Parallel.For(0, count, i =>
        {
            var random = new Random(i);
            int label = i % classes;
            int width = random.Next(120, 401), height = random.Next(120, 401);
            using var bitmap = new SKBitmap(width, height);
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(new SKColor((byte)random.Next(40, 90), (byte)random.Next(40, 90), (byte)random.Next(40, 90)));
                using var paint = new SKPaint { IsAntialias = true };
                for (int n = 0; n < 40; n++)
                {
                    paint.Color = new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256), 60);
                    canvas.DrawCircle(random.Next(width), random.Next(height), random.Next(3, 20), paint);
                }
                var hue = SKColor.FromHsv(360f * label / classes, 80, 90);
                paint.Color = hue;
                float size = Math.Min(width, height) * (0.2f + 0.3f * (float)random.NextDouble());
                float x = random.Next(width - (int)size), y = random.Next(height - (int)size);
                if (label % 2 == 0) canvas.DrawRect(x, y, size, size, paint);
                else canvas.DrawCircle(x + size / 2, y + size / 2, size / 2, paint);
            }
            string classFolder = Path.Combine(folder, $"class{label:D2}");
            Directory.CreateDirectory(classFolder);
            using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
            File.WriteAllBytes(Path.Combine(classFolder, $"{i:D6}.jpg"), data.ToArray());
        });
        output.WriteLine($"{count} JPEGs in {classes} classes written to {folder} in {clock.Elapsed.TotalSeconds:F0} s");
    }

    /// <summary>Scan (or cache index), first batch, and <paramref name="batches"/> batches of two augmented views each, as training prepares them.</summary>
    public static void Run(string folder, int imageSize, int batch, int batches, int workers, TextWriter output)
    {
        TorchRuntime.Initialize("cpu", 0);
        ProcessMemory.ResetPeak();
        var clock = Stopwatch.StartNew();
        var data = DatasetLoader.Load(folder, imageSize, workers: workers).Train;
        double scan = clock.Elapsed.TotalSeconds;
        var (mean, std) = data.ChannelStatistics();
        double statistics = clock.Elapsed.TotalSeconds - scan;
        var augmenter = new Augmentation.BatchAugmenter(new Augmentation.AugmentationOptions(), new InputNormalization(mean, std));
        using var generator = new Generator(0);
        var random = new Random(0);
        int[] NextBatch() => Enumerable.Range(0, batch).Select(_ => random.Next(data.Count)).ToArray();
        var start = Stopwatch.StartNew();
        Prepare(NextBatch());
        double first = start.Elapsed.TotalSeconds;
        var timed = Stopwatch.StartNew();
        for (int b = 0; b < batches; b++) Prepare(NextBatch());
        double perSecond = batches * batch / timed.Elapsed.TotalSeconds;
        // The decoding alone: both views' crops of the same number of images, without the tensor augmentations.
        var decoding = Stopwatch.StartNew();
        for (int b = 0; b < batches; b++)
        {
            var indices = NextBatch();
            var boxes = indices.Select(i => new CropBox(0, 0, 0.7f, 0.7f)).ToArray();
            foreach (var crops in data.Crops(indices, [(boxes, imageSize), (boxes, imageSize)])) crops.Dispose();
        }
        double decodedPerSecond = batches * batch / decoding.Elapsed.TotalSeconds;
        // The tensor augmentations alone: the same views of images already decoded and held in memory.
        using var stored = data.Gather(NextBatch());
        var inMemory = new ImageDataset(stored.data<byte>().ToArray(), batch, data.Channels, imageSize, imageSize, null, "memory");
        var augmenting = Stopwatch.StartNew();
        for (int b = 0; b < batches; b++)
        {
            using var scope = NewDisposeScope();
            augmenter.Views(inMemory, Enumerable.Range(0, batch).ToArray(), CPU, generator);
        }
        double augmentedPerSecond = batches * batch / augmenting.Elapsed.TotalSeconds;
        long? peak = ProcessMemory.PeakResidentBytes();
        output.WriteLine($"| {data.Count:N0} | {imageSize} | {workers} | {scan:F1} s | {statistics:F1} s | {first:F2} s | {perSecond:F0} | {decodedPerSecond:F0} | {augmentedPerSecond:F0} | " +
                         $"{(peak is long p ? $"{p / 1048576.0:F0} MiB" : "n/a")} |");

        void Prepare(int[] indices)
        {
            using var scope = NewDisposeScope();
            augmenter.Views(data, indices, CPU, generator);
        }
    }
}
