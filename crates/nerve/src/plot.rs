//! PNG plots: training curves and spike rasters.
