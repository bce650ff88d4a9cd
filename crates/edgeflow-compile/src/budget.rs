//! Budgets known before flashing: a model's arena and artifact bytes checked against a
//! board's RAM and flash.

use std::fmt;

use edgeflow_nn::Model;

use crate::board::Board;

/// A model's memory needs set against one board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Board name.
    pub board: String,
    /// Arena bytes the model needs (RAM besides stack and firmware statics).
    pub arena_bytes: u64,
    /// Static RAM of the artifact's feature pipeline (0 without one).
    pub pipeline_ram_bytes: u64,
    /// Board RAM bytes.
    pub ram_bytes: u64,
    /// Artifact bytes (flash besides the firmware code).
    pub artifact_bytes: u64,
    /// Board flash bytes.
    pub flash_bytes: u64,
    /// Multiply-accumulates per inference.
    pub macs: u64,
}

impl Budget {
    /// Sets `model` (whose artifact is `artifact_bytes` long) against `board`.
    pub fn new(model: &Model<'_>, artifact_bytes: usize, board: &Board) -> Budget {
        Budget {
            board: board.name.clone(),
            arena_bytes: model.arena_bytes() as u64,
            pipeline_ram_bytes: 0,
            ram_bytes: board.ram_bytes,
            artifact_bytes: artifact_bytes as u64,
            flash_bytes: board.flash_bytes,
            macs: model.header().macs,
        }
    }

    /// Adds the static RAM of the artifact's feature pipeline (its workspace), which
    /// lives beside the arena.
    pub fn with_pipeline_ram(self, bytes: usize) -> Budget {
        Budget {
            pipeline_ram_bytes: bytes as u64,
            ..self
        }
    }

    /// RAM the model needs: arena plus feature-pipeline workspace.
    pub fn ram_needed(&self) -> u64 {
        self.arena_bytes + self.pipeline_ram_bytes
    }

    /// Whether arena and pipeline fit in RAM and the artifact in flash.
    pub fn fits(&self) -> bool {
        self.ram_needed() <= self.ram_bytes && self.artifact_bytes <= self.flash_bytes
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
        writeln!(f, "board        {}", self.board)?;
        let pipeline = if self.pipeline_ram_bytes > 0 {
            format!(" + feature pipeline {}", self.pipeline_ram_bytes)
        } else {
            String::new()
        };
        let need = self.ram_needed();
        writeln!(
            f,
            "RAM          arena {}{pipeline} = {need} of {} bytes ({:.1}%){}",
            self.arena_bytes,
            self.ram_bytes,
            pct(need, self.ram_bytes),
            if need > self.ram_bytes {
                "  DOES NOT FIT"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "flash        artifact {} of {} bytes ({:.1}%){}",
            self.artifact_bytes,
            self.flash_bytes,
            pct(self.artifact_bytes, self.flash_bytes),
            if self.artifact_bytes > self.flash_bytes {
                "  DOES NOT FIT"
            } else {
                ""
            }
        )?;
        writeln!(f, "             (plus stack, firmware code and statics)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_and_does_not_fit() {
        let b = Budget {
            board: "x".into(),
            arena_bytes: 10,
            pipeline_ram_bytes: 0,
            ram_bytes: 10,
            artifact_bytes: 5,
            flash_bytes: 4,
            macs: 0,
        };
        assert!(!b.fits());
        assert!(b.to_string().contains("DOES NOT FIT"));
        let ok = Budget {
            flash_bytes: 5,
            ..b
        };
        assert!(ok.fits());
        assert!(!ok.to_string().contains("DOES NOT FIT"));
        // The pipeline's workspace counts against RAM too.
        let with_pipeline = ok.clone().with_pipeline_ram(1);
        assert_eq!(with_pipeline.ram_needed(), 11);
        assert!(!with_pipeline.fits());
        assert!(with_pipeline.to_string().contains("feature pipeline 1"));
    }
}
