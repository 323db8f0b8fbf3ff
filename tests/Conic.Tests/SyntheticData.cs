using System.IO.Compression;

namespace Conic.Tests;

/// <summary>
/// Small labelled IDX datasets written to a temporary folder. Each class is a texture at a random phase (horizontal
/// stripes, vertical stripes, checkerboard, diagonal stripes), so classes differ in what a globally pooled
/// convolutional feature can see, not in where something is.
/// </summary>
static class SyntheticData
{
    /// <summary>The same textures as PNG files in class subfolders (an image folder, which Conic streams).</summary>
    public static string WriteImageFolder(int count, int size = 16, int classes = 4, int seed = 0)
    {
        string idx = WriteIdx(count, 1, size, classes, seed);
        var images = Data.DatasetLoader.Load(idx).Train;
        using var pixels = images.Gather(Enumerable.Range(0, count).ToArray());
        var bytes = pixels.data<byte>().ToArray();
        string folder = TestFolder.New();
        for (int i = 0; i < count; i++)
        {
            using var bitmap = new SkiaSharp.SKBitmap(size, size);
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                byte value = bytes[i * size * size + y * size + x];
                bitmap.SetPixel(x, y, new SkiaSharp.SKColor(value, value, value));
            }
            string path = Path.Combine(folder, $"class{images.Labels![i]}", $"{i:D4}.png");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(path, data.ToArray());
        }
        return folder;
    }

    /// <summary>Scenes of these textures (<c>conic make-scenes</c>): 32 px canvases with masks and COCO boxes, four classes plus background.</summary>
    public static string WriteScenes(int train = 24, int val = 8)
    {
        string source = WriteIdx(trainCount: 64, testCount: 32);
        string scenes = Path.Combine(source, "scenes");
        var (exitCode, _, stderr) = CliRunner.Run("make-scenes", "--data", source, "--out", scenes, "--train", train.ToString(), "--val", val.ToString(), "--size", "32");
        Assert.True(exitCode == 0, stderr);
        return scenes;
    }

    public static string WriteIdx(int trainCount, int testCount, int size = 16, int classes = 4, int seed = 0)
    {
        string folder = TestFolder.New();
        var random = new Random(seed);
        WriteSplit(folder, "train", trainCount, size, classes, random);
        WriteSplit(folder, "t10k", testCount, size, classes, random);
        return folder;
    }

    static void WriteSplit(string folder, string prefix, int count, int size, int classes, Random random)
    {
        var pixels = new byte[count * size * size];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % classes;
            labels[i] = (byte)label;
            int phase = random.Next(4);
            for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                bool bright = (label % 4) switch
                {
                    0 => (y + phase) % 4 < 2,
                    1 => (x + phase) % 4 < 2,
                    2 => ((x + phase) / 2 + y / 2) % 2 == 0,
                    _ => (x + y + phase) % 4 < 2,
                };
                pixels[i * size * size + y * size + x] = (byte)Math.Clamp((bright ? 200 : 30) + random.Next(-25, 25), 0, 255);
            }
        }
        WriteIdx(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz"), new[] { count, size, size }, pixels);
        WriteIdx(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz"), new[] { count }, labels);
    }

    public static void WriteIdx(string path, int[] dims, byte[] data, bool gzip = true)
    {
        using var file = File.Create(path);
        using Stream stream = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        stream.Write(new byte[] { 0, 0, 8, (byte)dims.Length });
        foreach (int d in dims) stream.Write(new[] { (byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d });
        stream.Write(data);
    }
}
