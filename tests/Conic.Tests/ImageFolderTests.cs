using Conic.Data;
using SkiaSharp;

namespace Conic.Tests;

public class ImageFolderTests
{
    static void WritePng(string path, int width, int height, SKColor color)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(color);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void ClassSubfoldersBecomeLabelsAndImagesAreResizedSquare()
    {
        string root = TestFolder.New();
        WritePng(Path.Combine(root, "cats", "a.png"), 40, 20, new SKColor(255, 0, 0));
        WritePng(Path.Combine(root, "cats", "b.png"), 17, 33, new SKColor(255, 0, 0));
        WritePng(Path.Combine(root, "dogs", "c.png"), 64, 64, new SKColor(0, 0, 255));

        var log = new StringWriter();
        var dataset = ImageFolderReader.Read(root, imageSize: 12, log: log);
        Assert.Equal($"{root}: 3 images found; checking their headers", log.ToString().Split('\n')[0].TrimEnd());
        Assert.True(dataset.IsStreamed);
        Assert.Equal((3, 3, 12, 12), (dataset.Count, dataset.Channels, dataset.Height, dataset.Width));
        Assert.Equal(new[] { "cats", "dogs" }, dataset.ClassNames);
        Assert.Equal(new[] { 0, 0, 1 }, dataset.Labels);
        // The dog image is blue: channel 2 is bright, channel 0 dark, at the centre.
        int plane = 12 * 12, centre = 6 * 12 + 6;
        var dog = dataset.Gather([2]).data<byte>().ToArray();
        Assert.True(dog[2 * plane + centre] > 200 && dog[centre] < 50);
    }

    [Fact]
    public void LooseImagesAreUnlabelled()
    {
        string root = TestFolder.New();
        WritePng(Path.Combine(root, "x.png"), 10, 10, SKColors.Gray);
        var dataset = ImageFolderReader.Read(root, imageSize: 8);
        Assert.Null(dataset.Labels);
        Assert.Equal(new[] { "x.png" }, dataset.ItemNames);
    }

    [Fact]
    public void UnreadableFilesAreLeftOutAndCountedOrStopTheRead()
    {
        string root = TestFolder.New();
        WritePng(Path.Combine(root, "good.png"), 10, 10, SKColors.Gray);
        WritePng(Path.Combine(root, "truncated.png"), 30, 30, SKColors.Gray);
        var whole = File.ReadAllBytes(Path.Combine(root, "truncated.png"));
        File.WriteAllBytes(Path.Combine(root, "truncated.png"), whole[..(whole.Length - 20)]);
        File.WriteAllText(Path.Combine(root, "text.jpg"), "not a jpeg");
        File.WriteAllBytes(Path.Combine(root, "empty.jpg"), []);

        var dataset = ImageFolderReader.Read(root, imageSize: 8);
        Assert.Equal(["good.png"], dataset.ItemNames);
        Assert.Equal(new Dictionary<string, string>
        {
            [Path.Combine(root, "empty.jpg")] = "empty file",
            [Path.Combine(root, "text.jpg")] = "not a readable image",
            [Path.Combine(root, "truncated.png")] = "truncated (no PNG end chunk)",
        }, dataset.BadFiles.ToDictionary());
        Assert.StartsWith($"3 unreadable images left out of {root}: ", Assert.Single(dataset.Notes));

        var error = Assert.Throws<ConicException>(() => ImageFolderReader.Read(root, imageSize: 8, onBadImage: BadImagePolicy.Fail));
        Assert.Equal($"{Path.Combine(root, "empty.jpg")}: empty file", error.Message);
        File.Delete(Path.Combine(root, "good.png"));
        Assert.StartsWith($"{root}: none of its 3 images is readable", Assert.Throws<ConicException>(() => ImageFolderReader.Read(root, imageSize: 8)).Message);
    }
}
