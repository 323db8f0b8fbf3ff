namespace Conic; public static class Placeholder { }
